"""Every aiortc / aioice internal sfu.aiortc_hooks relies on: these fail if aiortc changes."""

import inspect
import socket

import aioice
import aiortc
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter

from sfu import Router, SfuConfig
from sfu import aiortc_hooks as hooks

from .peers import Publisher, Subscriber, SyntheticVideoTrack, client_pc, video_flowing, wait_for


def test_pinned_versions() -> None:
    assert aiortc.__version__ == hooks.AIORTC_VERSION
    assert aioice.__version__ == hooks.AIOICE_VERSION
    hooks.check_versions()


def test_sender_internals_exist() -> None:
    source = inspect.getsource(RTCRtpSender)
    for name in ("_run_rtp", "_run_rtcp", "_handle_rtcp_packet", "send", "stop"):
        assert callable(getattr(RTCRtpSender, name)), name
    # send() starts the loops through self._run_rtp / self._run_rtcp (so instances can
    # override them) and stop() waits for these four events
    assert "self._run_rtp(" in source and "self._run_rtcp()" in source
    for event in ("rtp_started", "rtp_exited", "rtcp_started", "rtcp_exited", "started"):
        assert f"self.__{event}" in source, event
    assert "self._ssrc = " in source and "self._rtx_ssrc = " in source
    assert "self._stream_id" in source and "self._track_id" in source


def test_receiver_internals_exist() -> None:
    source = inspect.getsource(RTCRtpReceiver)
    assert "async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int)" in source
    assert "async def _handle_rtcp_packet(self, packet: AnyRtcpPacket)" in source
    assert "async def receive(self, parameters: RTCRtpReceiveParameters)" in source
    for name in ("jitter_buffer", "nack_generator", "remote_bitrate_estimator"):
        assert f"self.__{name} = " in source, name


def test_dtls_transport_routes_to_overridable_handlers() -> None:
    source = inspect.getsource(RTCDtlsTransport)
    assert "await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)" in source
    assert "await recipient._handle_rtcp_packet(packet)" in source
    assert "self._tx_srtp" in source and ".protect_rtcp(" in source
    for name in ("_register_rtp_receiver", "_unregister_rtp_receiver"):
        assert hasattr(RTCDtlsTransport, name), name
    assert "self.ssrc_table" in inspect.getsource(RtpRouter)


def test_transceiver_and_codec_internals_exist() -> None:
    assert "self._codecs" in inspect.getsource(RTCRtpTransceiver)
    assert callable(hooks.aiortc_pc.find_common_codecs)
    assert "transceiver.sender._stream_id" in inspect.getsource(hooks.aiortc_pc)


def test_aioice_internals_exist() -> None:
    connection = aioice.Connection(ice_controlling=False)
    for name in ("_nominated", "_protocols", "_local_candidates", "_components"):
        assert hasattr(connection, name), name
    assert connection._local_candidates_start is False
    assert connection._local_candidates_end is False
    params = inspect.signature(connection.get_component_candidates).parameters
    assert list(params)[:2] == ["component", "addresses"]
    assert "self.transport.sendto" in inspect.getsource(aioice.ice.StunProtocol)
    # patient_consent replaces aioice's consent task and reuses its request builder
    assert connection._query_consent_task is None
    assert list(inspect.signature(connection.build_request).parameters) == ["pair", "nominate"]
    assert "retransmissions" in inspect.signature(aioice.ice.StunProtocol.request).parameters
    assert "_query_consent_task" in inspect.getsource(aioice.Connection.close)


async def test_loopback_candidate_in_the_configured_port_range() -> None:
    pc = client_pc()
    try:
        pc.addTransceiver("video", direction="recvonly")
        config = SfuConfig(udp_port_min=45000, udp_port_max=45010)
        hooks.use_ice_addresses(pc, config)
        await pc.setLocalDescription(await pc.createOffer())
        candidates = [
            line for line in pc.localDescription.sdp.splitlines() if "a=candidate" in line
        ]
        assert len(candidates) == 1
        fields = candidates[0].split()
        assert fields[4] == "127.0.0.1" and 45000 <= int(fields[5]) <= 45010
        assert "stun.l.google.com" not in pc.localDescription.sdp
    finally:
        await pc.close()


async def test_media_sockets_read_any_datagram_whole_without_a_quarter_megabyte_buffer() -> None:
    # asyncio's default 256 KiB read buffer costs each packet a large allocation (see
    # RECEIVE_SIZE); the largest UDP datagram still arrives whole
    pc = client_pc()
    try:
        pc.addTransceiver("audio", direction="recvonly")
        hooks.use_ice_addresses(pc, SfuConfig())
        await pc.setLocalDescription(await pc.createOffer())
        gatherer = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
        [protocol] = gatherer._connection._protocols
        assert 65507 <= protocol.transport.max_size < 128 * 1024
        got: list[int] = []
        protocol.datagram_received = lambda data, addr: got.append(len(data))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 18)
            sender.sendto(bytes(65507), protocol.transport.get_extra_info("sockname"))
        await wait_for(lambda: bool(got), 5, "the datagram")
        assert got == [65507]
    finally:
        await pc.close()


async def test_announced_address_replaces_the_bound_one_in_the_candidate() -> None:
    pc = client_pc()
    try:
        pc.addTransceiver("audio", direction="recvonly")
        hooks.use_ice_addresses(pc, SfuConfig(announced_addresses=("198.51.100.7",)))
        await pc.setLocalDescription(await pc.createOffer())
        assert " 198.51.100.7 " in pc.localDescription.sdp
        assert " 127.0.0.1 " not in pc.localDescription.sdp
    finally:
        await pc.close()


async def test_forwarding_path_bypasses_aiortc_decoders_and_encoders() -> None:
    async with video_flowing() as (publisher, viewer):
        receiver = publisher.producers[0]._transceiver.receiver
        assert receiver._RTCRtpReceiver__decoder_thread is None  # nothing decoded at the SFU
        consumer = next(iter(viewer.transport.consumers.values()))  # type: ignore[union-attr]
        assert consumer.transceiver.sender._RTCRtpSender__encoder is None  # nor encoded


async def test_every_peer_of_the_sfu_shares_one_certificate_and_ssl_context() -> None:
    async with video_flowing() as (publisher, viewer):
        shared = hooks.shared_certificate()
        fingerprint = shared.getFingerprints()[0].value
        for transport in (publisher.transport, viewer.transport):
            assert transport is not None
            assert fingerprint in transport._pc.localDescription.sdp
            ssl = hooks.dtls_transport(transport._pc)._ssl
            assert ssl.get_context() is next(iter(shared._contexts.values()))
        assert len(shared._contexts) == 1


async def test_forwarding_connects_the_selected_pairs_socket_to_the_viewer() -> None:
    async with video_flowing() as (_publisher, viewer):
        assert viewer.transport is not None
        dtls = hooks.dtls_transport(viewer.transport._pc)
        pair = dtls.transport._connection._nominated[1]
        assert pair.protocol.transport._sock.getpeername() == pair.remote_addr
        # RTCP from the viewer still arrives on that socket: its receiver reports are read
        consumer = next(iter(viewer.transport.consumers.values()))
        await wait_for(lambda: consumer.fraction_lost == 0 and consumer.remb_bps > 0, 10, "REMB")


async def test_a_viewers_transmit_session_keeps_the_sfus_replay_window() -> None:
    import pylibsrtp

    def protect(session: pylibsrtp.Session, seq: int) -> bytes:
        return session.protect(bytes([0x80, 96]) + seq.to_bytes(2, "big") + bytes(8) + b"x" * 20)

    async with video_flowing() as (publisher, viewer):
        assert viewer.transport is not None and publisher.transport is not None
        # the SFU's own transmit session: an earlier packet may be protected again within
        # SEND_WINDOW packets (a resend without RTX), not beyond
        tx = hooks.dtls_transport(viewer.transport._pc)._tx_srtp
        protect(tx, 1000)
        protect(tx, 1000 - hooks.SEND_WINDOW + 1)
        with pytest.raises(pylibsrtp.Error):
            protect(tx, 1000 - hooks.SEND_WINDOW - 1)
    # aiortc makes its sessions in _setup_srtp, by its module's name Session, once DTLS is up
    source = inspect.getsource(RTCDtlsTransport)
    assert "self._setup_srtp()" in source and "self._tx_srtp = Session(tx_policy)" in source
    # aiortc's name for the session class is its own again
    assert aiortc.rtcdtlstransport.Session is pylibsrtp.Session


def test_the_shared_certificate_is_renewed_after_its_lifetime() -> None:
    first = hooks.shared_certificate()
    assert hooks.shared_certificate() is first
    first.created -= hooks.CERTIFICATE_LIFETIME + 1
    renewed = hooks.shared_certificate()
    assert renewed is not first
    assert renewed.getFingerprints()[0].value != first.getFingerprints()[0].value


def test_aiortc_asks_the_certificate_for_every_ssl_context() -> None:
    # the shared context only works if aiortc asks the certificate for one per connection
    source = inspect.getsource(RTCDtlsTransport)
    assert "self.__local_certificate._create_ssl_context(" in source
    assert "self.__certificates = [RTCCertificate.generateCertificate()]" in inspect.getsource(
        aiortc.RTCPeerConnection
    )


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError):
        SfuConfig(ice_addresses=())
    with pytest.raises(ValueError):
        SfuConfig(udp_port_min=5000, udp_port_max=4000)
    with pytest.raises(ValueError):
        SfuConfig(announced_addresses=("a", "b"))


def test_pylibsrtp_internals_used_for_in_place_protect() -> None:
    import pylibsrtp
    from pylibsrtp import _binding

    assert pylibsrtp.__version__ == "1.0.0"
    session = pylibsrtp.Session(_policy(pylibsrtp.Policy.SSRC_ANY_OUTBOUND, b"k" * 44))
    assert len(session._cdata) == hooks.SRTP_BUFFER
    assert len(session._buffer) == hooks.SRTP_BUFFER
    assert session._srtp[0] is not None
    assert callable(_binding.lib.srtp_protect)


def _policy(ssrc_type: int, key: bytes) -> object:
    import pylibsrtp

    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=ssrc_type,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
    )
    policy.allow_repeat_tx = True
    return policy


class _FakePair:
    def __init__(self, transport: object, remote_addr: tuple[str, int]) -> None:
        self.protocol = type("P", (), {"transport": transport})()
        self.remote_addr = remote_addr


async def test_rtp_sink_sends_packets_a_receiver_can_decrypt() -> None:
    import asyncio
    import socket
    import types

    import pylibsrtp

    key = bytes(range(44))
    loop = asyncio.get_running_loop()
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        assert hasattr(transport, "_sock")  # asyncio internal the sink sends on
        connection = types.SimpleNamespace(
            _nominated={1: _FakePair(transport, receiver.getsockname())}
        )
        dtls = types.SimpleNamespace(
            _tx_srtp=pylibsrtp.Session(_policy(pylibsrtp.Policy.SSRC_ANY_OUTBOUND, key)),
            transport=types.SimpleNamespace(_connection=connection),
            _setup_srtp=lambda: None,
        )
        sink = hooks.RtpSink()
        sink.bind(dtls)
        ext = b"\xbe\xde\x00\x01\x10\xff\x00\x00"
        assert sink.send_packet(0x90, 0x80 | 96, 1234, 5678, 0xCAFE, ext + b"payload")
        rx = pylibsrtp.Session(_policy(pylibsrtp.Policy.SSRC_ANY_INBOUND, key))
        plain = rx.unprotect(receiver.recv(2000))
        assert plain == bytes.fromhex("90e004d20000162e0000cafe") + ext + b"payload"
        assert not sink.send_packet(0x80, 96, 1, 1, 1, b"x" * 1400)  # too long
        # ICE selects another pair (renomination): the next packet goes there
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        other.settimeout(2)
        connection._nominated[1] = _FakePair(transport, other.getsockname())
        assert sink.send_packet(0x80, 96, 1235, 5678, 0xCAFE, b"moved")
        assert rx.unprotect(other.recv(2000)).endswith(b"moved")
        other.close()
        connection._nominated.clear()  # ICE lost its pair: nothing is sent
        assert not sink.send_packet(0x80, 96, 2, 1, 1, b"x")
    finally:
        transport.close()
        receiver.close()


async def test_a_publishers_rtp_skips_aiortcs_queue_once_connected() -> None:
    from .peers import ToneTrack, wait_for

    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    try:
        await publisher.publish(SyntheticVideoTrack(), ToneTrack())
        await viewer.subscribe(*publisher.producers)
        await wait_for(lambda: viewer.total("video") >= 5, 10, "first frames")
        dtls = publisher.producers[0]._transceiver.receiver.transport
        assert dtls._sfu_direct
        seen_by_aiortc = dtls._RTCDtlsTransport__rx_packets

        def forwarded() -> int:
            return sum(p.forwarded for p in publisher.producers)

        start = forwarded()
        await wait_for(lambda: forwarded() >= start + 150, 10, "150 more packets")
        # aiortc's queue and DTLS task saw at most the RTCP of that second, not the media
        assert dtls._RTCDtlsTransport__rx_packets - seen_by_aiortc < 30
        frames = viewer.total("video")
        await wait_for(lambda: viewer.total("video") >= frames + 10, 5, "video carries on")
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()
