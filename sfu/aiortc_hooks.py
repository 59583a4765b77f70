"""Every aiortc / aioice internal the SFU touches, in one place (aiortc 1.16.0, aioice 0.13.0).

The rest of sfu/ uses only aiortc's public API plus the names exported here. The tests in
tests/sfu/test_aiortc_hooks.py check each assumption below, so that a new aiortc version fails
there, loudly, instead of silently forwarding nothing.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aioice
import aioice.candidate
import aioice.ice
import aioice.stun
import aiortc
import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc import clock as aiortc_clock
from aiortc import rtcdtlstransport as aiortc_dtls
from aiortc import rtcpeerconnection as aiortc_pc
from aiortc import rtp as aiortc_rtp
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import CODECS
from aiortc.rtcdtlstransport import RTCCertificate, SRTPProtectionProfile
from aiortc.rtcrtpparameters import (
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
)
from OpenSSL import SSL
from pylibsrtp import _binding as srtp_binding

from . import ticker
from .config import SfuConfig

AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"

# re-exported so that the rest of sfu/ never imports aiortc's private modules itself
RtpPacket = aiortc_rtp.RtpPacket
RtcpPacket = aiortc_rtp.RtcpPacket
RtcpSrPacket = aiortc_rtp.RtcpSrPacket
RtcpRrPacket = aiortc_rtp.RtcpRrPacket
RtcpByePacket = aiortc_rtp.RtcpByePacket
RtcpPsfbPacket = aiortc_rtp.RtcpPsfbPacket
RtcpRtpfbPacket = aiortc_rtp.RtcpRtpfbPacket
RtcpReceiverInfo = aiortc_rtp.RtcpReceiverInfo
RTCP_PSFB_PLI = aiortc_rtp.RTCP_PSFB_PLI
RTCP_PSFB_FIR = aiortc_rtp.RTCP_PSFB_FIR
RTCP_PSFB_APP = aiortc_rtp.RTCP_PSFB_APP
RTCP_RTPFB_NACK = aiortc_rtp.RTCP_RTPFB_NACK
pack_remb_fci = aiortc_rtp.pack_remb_fci
unpack_remb_fci = aiortc_rtp.unpack_remb_fci
current_ntp_time = aiortc_clock.current_ntp_time
SessionDescription = aiortc_sdp.SessionDescription

# codecs the SFU forwards; anything else is refused, never transcoded
FORWARDED_MIME_TYPES = frozenset({"video/vp8", "video/h264", "audio/opus"})

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

SENDER = "_RTCRtpSender__"

# libsrtp through pylibsrtp's cffi binding: protect in place, in one buffer for all peers
srtp_ffi = srtp_binding.ffi
srtp_protect = srtp_binding.lib.srtp_protect
SRTP_BUFFER = 1500
MAX_PROTECTED_INPUT = SRTP_BUFFER - 16 - 128  # pylibsrtp's SRTP_MAX_TRAILER_LEN
# Every RTP copy the SFU sends is written here, protected with its peer's session and sliced
# out (a bytes copy) before the next copy is written; all on the event loop's thread. One
# buffer that stays in the CPU's cache, instead of each peer's session buffer (1.5 KB apiece,
# cold again by the time that peer's next copy comes): 3–6 % less server CPU per copy at 200
# viewers (two runs of paired 2-s windows alternating both ways in one server).
SEND_BUFFER = srtp_ffi.new("char[]", SRTP_BUFFER)
SEND_VIEW = srtp_ffi.buffer(SEND_BUFFER)
SEND_LENGTH = srtp_ffi.new("int *")
# Packets a transmit session remembers, so that a resend of an earlier sequence number (a
# stream without RTX) may be protected again (libsrtp's replay window). aiortc keeps 1024;
# libsrtp shifts that window on every packet protected: 256 (2 s of 900 kbps video) cost
# ≈ 3 % less server CPU at 200 viewers (paired 2-s windows in one server, both ways).
SEND_WINDOW = 256
RTP_HEADER = struct.Struct("!BBHII")


@dataclass
class StreamParams:
    """What negotiation settled for one m-line: payload types, SSRCs, extension ids."""

    mid: str | None
    mime_type: str
    clock_rate: int
    payload_type: int
    rtx_payload_type: int | None = None
    ssrc: int | None = None
    rtx_ssrc: int | None = None
    cname: str | None = None
    extension_ids: dict[str, int] = field(default_factory=dict)


def check_versions() -> None:
    """Refuse to run on an aiortc / aioice other than the one these hooks were written for."""
    if aiortc.__version__ != AIORTC_VERSION or aioice.__version__ != AIOICE_VERSION:
        raise RuntimeError(
            f"sfu.aiortc_hooks needs aiortc {AIORTC_VERSION} and aioice {AIOICE_VERSION}, "
            f"found {aiortc.__version__} and {aioice.__version__}"
        )


def is_rtx(codec: Any) -> bool:
    return str(codec.mimeType).lower().endswith("/rtx")


def _params(parameters: Any, ssrc: int | None, rtx_ssrc: int | None) -> StreamParams:
    main = parameters.codecs[0]
    rtx_pt = None
    for codec in parameters.codecs:
        if is_rtx(codec) and codec.parameters.get("apt") == main.payloadType:
            rtx_pt = codec.payloadType
    ids = {ext.uri: ext.id for ext in parameters.headerExtensions}
    return StreamParams(
        mid=parameters.muxId,
        mime_type=main.mimeType.lower(),
        clock_rate=main.clockRate,
        payload_type=main.payloadType,
        rtx_payload_type=rtx_pt,
        ssrc=ssrc,
        rtx_ssrc=rtx_ssrc,
        cname=getattr(parameters.rtcp, "cname", None),
        extension_ids=ids,
    )


# --- receiving side -----------------------------------------------------------------------


def attach_receiver(
    receiver: Any,
    on_start: Callable[[StreamParams], None],
    on_rtp: Callable[[Any, int], None],
    on_rtcp: Callable[[Any], None],
) -> None:
    """Take a receiver's packets before aiortc's jitter buffer, depacketiser and decoder.

    receive() is replaced: the receiver is registered with the DTLS transport's RTP router (so
    aiortc still parses, SSRC/payload-type checks and routes packets) but no decoder thread and
    no RTCP task is started: the SFU reports to the publisher itself.
    """

    async def receive(parameters: Any) -> None:
        ssrc = rtx_ssrc = None
        for encoding in parameters.encodings:
            ssrc = encoding.ssrc
            if encoding.rtx is not None:
                rtx_ssrc = encoding.rtx.ssrc
        receiver.transport._register_rtp_receiver(receiver, parameters)
        if rtx_ssrc is not None:
            # aiortc routes only the media SSRC; route retransmissions here too
            receiver.transport._rtp_router.ssrc_table[rtx_ssrc] = receiver
        on_start(_params(parameters, ssrc, rtx_ssrc))

    async def handle_rtp(packet: Any, arrival_time_ms: int) -> None:
        on_rtp(packet, arrival_time_ms)

    receiver._sfu_on_rtp = on_rtp  # taken synchronously once RTP bypasses aiortc's queue

    async def handle_rtcp(packet: Any) -> None:
        on_rtcp(packet)

    receiver.receive = receive
    receiver._handle_rtp_packet = handle_rtp
    receiver._handle_rtcp_packet = handle_rtcp


RECEIVER = "_RTCRtpReceiver__"


def release_receiver_state(receiver: Any) -> None:
    """Drop a receiver's jitter buffer, NACK generator and bitrate estimator.

    The SFU never lets aiortc process received packets, and a video receiver's estimator alone
    holds a thousand rate buckets (≈ 100 KB): per subscriber, that was a third of the memory.
    """
    for name in ("jitter_buffer", "nack_generator", "remote_bitrate_estimator"):
        setattr(receiver, RECEIVER + name, None)


def detach_receiver(receiver: Any) -> None:
    """Stop routing packets to a receiver whose producer closed."""
    receiver._sfu_on_rtp = None
    receiver.transport._unregister_rtp_receiver(receiver)


def receive_rtp_directly(pc: RTCPeerConnection) -> bool:
    """Hand a connected peer's RTP to its producers straight from the socket's callback.

    aiortc puts every datagram in aioice's queue and wakes the DTLS transport's task, which
    unprotects, parses and routes it and awaits the receiver's coroutine: two turns of the
    event loop and several coroutines per packet, most of what a publisher's packet costs the
    SFU before its copies (in a six-party meeting each packet has only five copies to share
    that cost). Once DTLS is up, a packet whose SSRC aiortc's router already knows, for a
    receiver a producer has attached, is unprotected, parsed (by aiortc's own parser) and
    handed on here, synchronously. Everything else — STUN, DTLS, RTCP, and RTP of SSRCs not yet
    learnt (aiortc learns them from the MID extension) — goes aiortc's way as before.
    False if DTLS is not up yet (or the peer is already served so).
    """
    dtls = dtls_transport(pc)
    if dtls is None or dtls._rx_srtp is None or getattr(dtls, "_sfu_direct", False):
        return False
    session = dtls._rx_srtp
    ssrc_table = dtls._rtp_router.ssrc_table
    extensions = dtls._rtp_header_extensions_map
    current_ms = aiortc_clock.current_ms
    monotonic, tick_due = time.monotonic, ticker._due

    def wrap(original: Callable[[bytes, Any], None]) -> Callable[[bytes, Any], None]:
        def received(data: bytes, addr: Any) -> None:
            if len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 224:
                original(data, addr)  # STUN, DTLS, RTCP
                return
            receiver = ssrc_table.get(int.from_bytes(data[8:12], "big"))
            on_rtp = getattr(receiver, "_sfu_on_rtp", None)
            if on_rtp is None:
                original(data, addr)
                return
            try:
                packet = aiortc_rtp.RtpPacket.parse(session.unprotect(data), extensions)
            except (pylibsrtp.Error, ValueError):
                return  # not authentic, replayed or malformed: dropped, as aiortc would
            on_rtp(packet, current_ms())
            if monotonic() >= tick_due[0]:
                ticker.poll()

        return received

    for protocol in dtls.transport._connection._protocols:
        protocol.datagram_received = wrap(protocol.datagram_received)
    dtls._sfu_direct = True
    return True


# --- sending side -------------------------------------------------------------------------


async def _idle(sender: Any, started: str, exited: str) -> None:
    # stands in for aiortc's RTP / RTCP loops: stop() waits for these two events
    getattr(sender, SENDER + started).set()
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        pass
    finally:
        getattr(sender, SENDER + exited).set()


def attach_sender(
    sender: Any,
    on_start: Callable[[StreamParams], None],
    on_rtcp: Callable[[Any], None],
) -> None:
    """Make a sender a pure outlet for forwarded packets.

    aiortc's encoder loop and its sender reports (zero counts, unset timestamps for forwarded
    streams) are replaced by idle tasks; incoming RTCP for its SSRC goes to on_rtcp.
    """
    original_send = sender.send

    async def send(parameters: Any) -> None:
        first = not getattr(sender, SENDER + "started")
        await original_send(parameters)
        if first:
            on_start(_params(parameters, sender._ssrc, sender._rtx_ssrc))

    async def run_rtp(codec: Any) -> None:
        await _idle(sender, "rtp_started", "rtp_exited")

    async def run_rtcp() -> None:
        await _idle(sender, "rtcp_started", "rtcp_exited")

    async def handle_rtcp(packet: Any) -> None:
        on_rtcp(packet)

    sender.send = send
    sender._run_rtp = run_rtp
    sender._run_rtcp = run_rtcp
    sender._handle_rtcp_packet = handle_rtcp


def sender_ssrcs(sender: Any) -> tuple[int, int]:
    """The (media, RTX) SSRCs aiortc put in the SDP for this sender."""
    return int(sender._ssrc), int(sender._rtx_ssrc)


def set_msid(sender: Any, stream_id: str, track_id: str) -> None:
    """Choose the msid aiortc writes for this sender's m-line."""
    sender._stream_id = stream_id
    sender._track_id = track_id


# --- codecs -------------------------------------------------------------------------------


def forwardable(codecs: Iterable[Any]) -> list[Any]:
    return [c for c in codecs if c.mimeType.lower() in FORWARDED_MIME_TYPES]


def common_codecs(kind: str, remote_codecs: list[Any]) -> list[RTCRtpCodecParameters]:
    """The codecs aiortc would accept for an m-line, in the remote side's order."""
    return list(aiortc_pc.find_common_codecs(CODECS[kind], remote_codecs))


def restrict_to_one_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """Keep only the first forwardable codec (and its RTX) of a negotiated transceiver."""
    codecs = transceiver._codecs
    main: RTCRtpCodecParameters | None = next(
        iter(forwardable(c for c in codecs if not is_rtx(c))), None
    )
    if main is None:
        return None
    rtx = [c for c in codecs if is_rtx(c) and c.parameters.get("apt") == main.payloadType]
    transceiver._codecs = [main, *rtx[:1]]
    return main


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    return list(transceiver._codecs)


def codec_capabilities(codec: RTCRtpCodecParameters, rtx: bool) -> list[RTCRtpCodecCapability]:
    """Capabilities for setCodecPreferences that select exactly this codec (and RTX)."""
    caps = [
        RTCRtpCodecCapability(
            mimeType=codec.mimeType,
            clockRate=codec.clockRate,
            channels=codec.channels,
            parameters=copy.deepcopy(codec.parameters),
        )
    ]
    if rtx:
        caps.append(
            RTCRtpCodecCapability(
                mimeType=codec.mimeType.split("/")[0] + "/rtx", clockRate=codec.clockRate
            )
        )
    return caps


def renumber_header_extensions(pc: RTCPeerConnection, ids: dict[str, int]) -> None:
    """Give every transceiver's header extensions the session's ids, by URI.

    `createOffer` resets `_headerExtensions` of *every* transceiver to aiortc's fixed ids, and
    a receiver or sender started before the answer arrives (aiortc's `__connect` runs as soon as
    DTLS is up) would register those with the DTLS transport for good: the browser's audio
    level (id 1) would then be read as mid, its abs-send-time (id 2) as audio level.
    """
    for transceiver in pc.getTransceivers():
        transceiver._headerExtensions = [
            RTCRtpHeaderExtensionParameters(id=ids.get(ext.uri, ext.id), uri=ext.uri)
            for ext in transceiver._headerExtensions
        ]


# --- transports ---------------------------------------------------------------------------


def dtls_transport(pc: RTCPeerConnection) -> Any | None:
    """The (bundled) DTLS transport of a connection, if it has one yet."""
    transceivers = pc.getTransceivers()
    return transceivers[0].receiver.transport if transceivers else None


def answer_as_dtls_server(pc: RTCPeerConnection, offer: Any) -> None:
    """Answer `a=setup:passive` to an `actpass` offer: the SFU is the DTLS server.

    aiortc would answer `active`, and as DTLS client it offers only ECDSA suites (some peers
    then fail); as server it also sees the client's close_notify reliably.
    """
    dtls = dtls_transport(pc)
    roles = {media.dtls.role for media in offer.media if media.dtls is not None}
    if dtls is not None and dtls._role == "auto" and roles <= {"auto"}:
        dtls._set_role("server")


class _NominatedPairs(dict[int, Any]):
    """aioice's Connection._nominated (component -> selected pair), telling the sink of changes.

    The sink sends on the selected pair's socket; instead of looking the pair up for every copy
    it forgets it whenever aioice nominates, renominates or drops one, and looks again once.
    """

    sink: RtpSink | None = None

    def _changed(self) -> None:
        if self.sink is not None:
            self.sink._pair = None

    def __setitem__(self, key: int, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: int) -> None:
        super().__delitem__(key)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()

    def pop(self, *args: Any) -> Any:
        value = super().pop(*args)
        self._changed()
        return value


def _session_with_send_window(policy: pylibsrtp.Policy) -> pylibsrtp.Session:
    if policy.ssrc_type == pylibsrtp.Policy.SSRC_ANY_OUTBOUND:
        policy.window_size = SEND_WINDOW
    return pylibsrtp.Session(policy)


def _use_send_window(dtls: Any) -> None:
    """Make `dtls` set up its transmit SRTP session with SEND_WINDOW when DTLS completes."""
    if getattr(dtls, "_sfu_send_window", False):
        return
    setup = dtls._setup_srtp

    def setup_srtp() -> None:
        # aiortc makes both sessions here, synchronously: its Session name is ours meanwhile
        aiortc_dtls.Session = _session_with_send_window  # type: ignore[attr-defined,assignment]
        try:
            setup()
        finally:
            aiortc_dtls.Session = pylibsrtp.Session  # type: ignore[attr-defined]

    dtls._setup_srtp = setup_srtp
    dtls._sfu_send_window = True


class RtpSink:
    """Protects and sends RTP / RTCP on a DTLS transport's selected pair, synchronously.

    The forwarding path (consumer.forward_group, then send_batch; send_packet for one packet)
    writes the header and payload straight into one cffi buffer (SEND_BUFFER), protects it in
    place with the peer's libsrtp session and hands it to the selected pair's raw socket: no
    coroutine, none of aiortc's or aioice's layers. That socket is connected to the peer once a
    pair is selected: the kernel keeps its route and Python parses no address per copy (≈ 10 %
    of a copy's CPU); aioice answers only the selected pair after nomination, so nothing it
    needs is filtered out. The sink forgets the pair whenever aioice's nominated pairs change
    (_NominatedPairs) and looks again at the next send, connecting the socket anew; the SRTP
    session is taken then too (aiortc sets it once, when DTLS completes; until then nothing is
    sent).
    A packet that does not fit the socket buffer is dropped (as a congested network would; NACKs
    repair it).
    """

    __slots__ = (
        "_connection",
        "_dtls",
        "_pair",
        "_send",
        "_session",
        "_srtp",
        "dropped",
    )

    def __init__(self) -> None:
        self._dtls: Any = None
        self._connection: Any = None
        self._pair: Any = None
        self._session: Any = None
        self.dropped = 0  # packets refused by a full socket buffer or a failed send

    def bind(self, dtls: Any) -> None:
        _use_send_window(dtls)
        self._dtls = dtls
        self._connection = dtls.transport._connection
        self._pair = None
        nominated = self._connection._nominated
        if not isinstance(nominated, _NominatedPairs):
            nominated = self._connection._nominated = _NominatedPairs(nominated)
        nominated.sink = self

    def _refresh(self) -> bool:
        if self._dtls is None:
            return False
        pair = self._connection._nominated.get(1)
        session = self._dtls._tx_srtp
        transport = pair.protocol.transport if pair is not None else None
        if session is None or transport is None or transport.is_closing():
            self._pair = None
            return False
        sock = transport._sock
        try:
            sock.connect(pair.remote_addr)
        except OSError:
            self._pair = None
            return False
        self._send = sock.send
        self._session = session
        self._srtp = session._srtp[0]
        self._pair = pair
        return True

    def send_packet(self, b0: int, b1: int, seq: int, ts: int, ssrc: int, tail: bytes) -> bool:
        """Send one RTP packet: a fresh 12-byte header, then `tail` (extensions + payload).

        For single packets (resends); the fan-out makes a group's copies in one function
        (consumer.forward_group) and sends them with send_batch.
        """
        if self._pair is None and not self._refresh():
            return False
        end = 12 + len(tail)
        if end > MAX_PROTECTED_INPUT:
            return False
        RTP_HEADER.pack_into(SEND_VIEW, 0, b0, b1, seq, ts, ssrc)
        SEND_VIEW[12:end] = tail
        SEND_LENGTH[0] = end
        if srtp_protect(self._srtp, SEND_BUFFER, SEND_LENGTH):
            return False
        try:
            self._send(SEND_VIEW[: SEND_LENGTH[0]])  # a cffi buffer's slice: bytes
        except OSError:  # full socket buffer, or a peer that vanished
            self.dropped += 1
            return False
        return True

    def send_rtp(self, data: bytes) -> bool:
        """Send a ready-made RTP packet (slow path, kept for tests and tools)."""
        b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
        return self.send_packet(b0, b1, seq, ts, ssrc, data[12:])

    def send_rtcp(self, data: bytes) -> bool:
        if self._pair is None and not self._refresh():
            return False
        try:
            self._send(self._session.protect_rtcp(data))
        except Exception:  # never raise into the caller's loop
            return False
        return True


def send_batch(batch: list[tuple[RtpSink, bytes]]) -> None:
    """Send protected packets (consumer.forward_group makes them), one after the other.

    The fan-out first protects a group of copies, then sends them: Python and libsrtp run
    warm, and the kernel's send path (which on loopback also delivers each copy) runs after,
    instead of every copy alternating between the two (≈ 10 % less CPU per copy at 100
    viewers, measured in one server alternating both ways second by second).
    """
    for sink, packet in batch:
        try:
            sink._send(packet)
        except OSError:
            sink.dropped += 1


# --- DTLS certificate ----------------------------------------------------------------------

CERTIFICATE_LIFETIME = 24 * 3600.0  # seconds one certificate serves new peers (aiortc's: 30 days)


class SharedCertificate(RTCCertificate):
    """One DTLS certificate, and one OpenSSL context per SRTP profile list, for many peers.

    aiortc makes a key, a certificate and a 25 KB SSL context for every connection; an SFU
    serving hundreds of viewers needs one of each (as Janus or mediasoup do). The shared context
    keeps no session cache (no resumption in DTLS-SRTP, and it would grow with every peer) and
    releases its record buffers while a connection is idle.
    """

    def __init__(self, key: Any, cert: Any) -> None:
        super().__init__(key, cert)
        self.created = time.monotonic()
        self._contexts: dict[tuple[bytes, ...], SSL.Context] = {}

    def _create_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> SSL.Context:
        key = tuple(profile.openssl_profile for profile in srtp_profiles)
        context = self._contexts.get(key)
        if context is None:
            context = super()._create_ssl_context(srtp_profiles)
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
            context.set_mode(SSL.MODE_RELEASE_BUFFERS)
            self._contexts[key] = context
        return context


_shared: list[SharedCertificate] = []


def shared_certificate() -> SharedCertificate:
    """This process's DTLS certificate for new peers, renewed once a day."""
    if not _shared or time.monotonic() - _shared[0].created > CERTIFICATE_LIFETIME:
        _shared[:] = [SharedCertificate.generateCertificate()]
    return _shared[0]


def use_shared_certificate(pc: RTCPeerConnection) -> None:
    """Give a new connection the shared certificate instead of the one aiortc made for it."""
    pc._RTCPeerConnection__certificates = [shared_certificate()]  # type: ignore[attr-defined]


# --- ICE candidates -----------------------------------------------------------------------


# asyncio reads each datagram with recvfrom(256 KiB): above glibc's 128 KiB mmap / trim threshold,
# that allocation and its shrink to the datagram's size cost a 1200-byte packet ≈ 10.9 µs of
# CPU on this machine, against 1.5 µs with a 64 KiB buffer (bench, 2026-12-06). No UDP datagram
# is larger than 65,507 bytes: 64 KiB receives every one whole.
RECEIVE_SIZE = 65536


def _bind_udp(address: str, port_min: int, port_max: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    ports = port_max - port_min + 1
    start = random.randrange(ports)
    for i in range(ports):
        port = port_min + (start + i) % ports
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, port))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        # room for a keyframe burst while the loop is busy forwarding (capped by rmem_max)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return sock
    raise OSError(f"no free UDP port on {address} in {port_min}-{port_max}")


def _make_gather(connection: Any, config: SfuConfig) -> Callable[[], Awaitable[None]]:
    async def gather_candidates() -> None:
        if connection._local_candidates_start:
            return
        connection._local_candidates_start = True
        loop = asyncio.get_running_loop()
        for index, address in enumerate(config.ice_addresses):
            sock = _bind_udp(address, config.udp_port_min, config.udp_port_max)
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(connection), sock=sock
            )
            transport.max_size = RECEIVE_SIZE  # type: ignore[attr-defined]
            announced = config.announced_address(index)
            protocol.local_candidate = aioice.Candidate(
                foundation=aioice.candidate.candidate_foundation("host", "udp", announced),
                component=1,
                transport="udp",
                priority=aioice.candidate.candidate_priority(1, "host", 65535 - index),
                host=announced,
                port=sock.getsockname()[1],
                type="host",
            )
            connection._protocols.append(protocol)
            connection._local_candidates.append(protocol.local_candidate)
        # relayed / reflexive candidates only from configured in-network servers
        if connection.stun_server or connection.turn_server:
            for component in connection._components:
                connection._local_candidates += await connection.get_component_candidates(
                    component=component, addresses=[]
                )
        connection._local_candidates_end = True

    return gather_candidates


def use_ice_addresses(pc: RTCPeerConnection, config: SfuConfig) -> None:
    """Gather host candidates on the configured addresses only (127.0.0.1 included).

    Call before every setLocalDescription: aioice's own gathering leaves loopback out and
    cannot keep to a port range.
    """
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        connection: Any = gatherer._connection
        if getattr(connection, "_sfu_gather", False):
            continue
        connection.gather_candidates = _make_gather(connection, config)
        connection._sfu_gather = True


# --- consent freshness (RFC 7675) ---------------------------------------------------------

logger = logging.getLogger(__name__)
CONSENT_INTERVAL = aioice.ice.CONSENT_INTERVAL  # seconds between checks, randomised ±20 %
CONSENT_RETRANSMISSIONS = 3  # a check waits 0.5 + 1 + 2 + 4 s for its answer
CONSENT_EXPIRY = 30.0  # seconds without any answer before the peer counts as gone


def patient_consent(pc: RTCPeerConnection) -> bool:
    """Let a connected peer's consent expire only after 30 s without any answer (RFC 7675).

    aioice sends each check once and gives up after 0.5 s, closing after six misses in a row:
    a phone on a congested network with a round trip over half a second, or any client whose
    answers are late for half a minute, lost its media while still answering. Here every check
    is retransmitted, and only 30 s with no answer at all closes the connection.
    False if the connection has no consent checks running (not connected yet, or closed).
    """
    dtls = dtls_transport(pc)
    if dtls is None:
        return False
    connection: Any = dtls.transport._connection
    task = connection._query_consent_task
    if task is None or task.done() or getattr(connection, "_sfu_consent", False):
        return False
    task.cancel()
    connection._sfu_consent = True
    connection._query_consent_task = asyncio.get_running_loop().create_task(
        _check_consent(connection)
    )
    return True


async def _check_consent(connection: Any) -> None:
    loop = asyncio.get_running_loop()
    answered = loop.time()
    key = connection.remote_password.encode("utf8")
    while True:
        await ticker.ticker().sleep(CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
        for pair in list(connection._nominated.values()):
            request = connection.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request,
                    pair.remote_addr,
                    integrity_key=key,
                    retransmissions=CONSENT_RETRANSMISSIONS,
                )
                answered = loop.time()
            except aioice.stun.TransactionError:
                pass
        if loop.time() - answered >= CONSENT_EXPIRY:
            remote = [pair.remote_addr for pair in connection._nominated.values()]
            logger.info("ICE consent expired: no answer from %s for %.0f s", remote, CONSENT_EXPIRY)
            connection._query_consent_task = None  # close() must not wait for this task
            await connection.close()
            return
