"""Malformed packets and vanishing peers must not disturb anyone else's media."""

import contextlib
import socket
import struct

import pylibsrtp

from sfu import Router

from .peers import Publisher, Subscriber, SyntheticVideoTrack, ToneTrack, wait_for


async def _send_protected(publisher: Publisher, data: bytes) -> None:
    # through the client's own DTLS transport, so the packet is properly SRTP-protected
    dtls = publisher.pc.getTransceivers()[0].sender.transport
    with contextlib.suppress(pylibsrtp.Error):  # libsrtp itself refuses some garbage
        await dtls._send_rtp(data)


def _send_unprotected(router: Router, peer_id: str, data: bytes) -> None:
    # straight at the SFU's media socket, as an attacker on the path could
    sink = router.transports[peer_id].sink
    sockname = sink._connection._nominated[1].protocol.transport.get_extra_info("sockname")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, sockname)


def _junk(pt: int, ssrc: int, seq: int) -> list[bytes]:
    # distinct sequence numbers, so that SRTP replay protection does not hide them all
    return [
        b"\x80" + bytes([pt]) + b"\x00",  # truncated header
        struct.pack("!BBHII", 0x80, pt, seq, 1, 0xDEADBEEF) + b"x" * 50,  # unknown SSRC
        struct.pack("!BBHII", 0x80, 33, seq, 1, ssrc) + b"x" * 50,  # unknown payload type
        struct.pack("!BBHII", 0x90, pt, seq, 2, 0xBADBAD) + b"\xbe\xde\x00\x09",  # short ext
        b"\x81\xc9\x00\x40" + b"\x00" * 8,  # RTCP RR claiming more than it has
        b"\x81\xcd\x00\x02" + b"\x00" * 8,  # NACK with no FCI
    ]


async def test_malformed_and_unknown_packets_are_dropped_and_the_stream_carries_on() -> None:
    router = Router()
    publisher, viewer = Publisher(router, "pub"), Subscriber(router, "viewer")
    try:
        await publisher.publish(SyntheticVideoTrack())
        producer = publisher.producers[0]
        await viewer.subscribe(producer)
        await wait_for(lambda: viewer.total("video") >= 5, 10, "first frames")
        for seq in range(20):
            for data in _junk(producer._pt, producer.ssrc or 1, seq):
                await _send_protected(publisher, data)
                _send_unprotected(router, "pub", data)
                _send_unprotected(router, "pub", b"\x16\xfe\xfd" + data)  # fake DTLS record
        frames = viewer.total("video")
        await wait_for(lambda: viewer.total("video") >= frames + 20, 5, "video carries on")
        assert producer.packets_dropped >= 10  # the SFU's own SSRC check fired
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()


async def test_a_publisher_vanishing_mid_stream_leaves_the_others_running() -> None:
    router = Router()
    stays, vanishes = Publisher(router, "stays"), Publisher(router, "vanishes")
    viewer = Subscriber(router, "viewer")
    closed: list[str] = []
    try:
        await stays.publish(SyntheticVideoTrack(), ToneTrack())
        await vanishes.publish(SyntheticVideoTrack())
        router.producer_closed.connect(lambda p: closed.append(p.peer_id))
        await viewer.subscribe(*router.producers.values())
        await wait_for(
            lambda: len(viewer.frames) == 3 and min(viewer.frames.values()) > 0,
            10,
            "frames on all three tracks",
        )
        await vanishes.close()  # the peer disappears; nobody told the SFU
        await wait_for(lambda: "vanishes" not in router.transports, 10, "the SFU to notice")
        assert closed == ["vanishes"]
        assert viewer.transport is not None and len(viewer.transport.consumers) == 2
        frames = viewer.total("video")
        await wait_for(lambda: viewer.total("video") >= frames + 20, 5, "the other video")
    finally:
        for peer in (viewer, stays, vanishes):
            await peer.close()
        await router.close()
