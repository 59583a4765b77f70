"""Take a receiving peer's RTP at its socket: decrypt in place and hand it on, nothing more.

aiortc's receive path costs a load generator ≈ 70 µs per packet (aioice's STUN check, a queue,
a coroutine wake-up, unprotect, parse); with a hundred viewers that path, not the server, is
what saturates the generator's core. Once DTLS is up, a tapped connection decrypts each RTP
packet with the connection's own SRTP session straight from the datagram callback. STUN and
DTLS still go aiortc's way; RTCP too, unless the caller takes it (`on_rtcp`: a viewer that only
counts has nothing to learn from the server's sender reports, and aiortc's way costs ≈ 200 µs
a packet, ≈ 6 % of the generator's core at 300 viewers). Both load generators
(bench/forwarding_load.py for the SFU alone, bench/loadgen/ for the side-by-side runs) use this
one tap. (Reading the socket here instead of through asyncio's transport was tried on
2026-12-04 and cost the generator more.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pylibsrtp._binding import ffi, lib

from sfu.aiortc_hooks import dtls_transport

MAX_PACKET = 1500

# on_rtp(buffer, length): the decrypted packet is buffer[:length] (a cffi buffer, reused for
# the next packet: read it during the call only)
OnRtp = Callable[[Any, int], None]


def tap(
    pc: Any,
    on_rtp: OnRtp,
    on_error: Callable[[], None],
    passthrough: Callable[[bytes], bool] | None = None,
    on_rtcp: Callable[[], None] | None = None,
) -> bool:
    """Tap `pc` if its DTLS handshake is done; False (and nothing changed) if not yet.

    `passthrough(packet)`, when given, picks RTP packets (still encrypted: it sees the clear
    header) that go aiortc's way instead, to be decoded; the others are tapped.
    `on_rtcp()`, when given, is called for each RTCP packet instead of aiortc's handling, once
    the packet is decrypted and authenticated (a failure counts as a decrypt error).
    """
    dtls = dtls_transport(pc)
    if dtls is None or dtls._rx_srtp is None:
        return False
    for protocol in dtls.transport._connection._protocols:
        protocol.datagram_received = _decrypting(
            dtls._rx_srtp, protocol.datagram_received, on_rtp, on_error, passthrough, on_rtcp
        )
    return True


def only_socket(pc: Any) -> Any | None:
    """The UDP socket a connection receives on, when it has exactly one (one host address)."""
    dtls = dtls_transport(pc)
    protocols = dtls.transport._connection._protocols if dtls is not None else []
    if len(protocols) != 1 or protocols[0].transport is None:
        return None
    return protocols[0].transport.get_extra_info("socket")


def _decrypting(
    session: Any,
    original: Callable[[bytes, Any], None],
    on_rtp: OnRtp,
    on_error: Callable[[], None],
    passthrough: Callable[[bytes], bool] | None = None,
    on_rtcp: Callable[[], None] | None = None,
) -> Callable[[bytes, Any], None]:
    # decrypt in place in the session's own buffer, as the SFU's RtpSink protects
    srtp, cdata, buffer = session._srtp[0], session._cdata, session._buffer
    len_p = ffi.new("int *")

    def rtcp_taken(buffer: Any, length: int) -> None:
        if on_rtcp is not None:
            on_rtcp()

    def received(data: bytes, addr: Any) -> None:
        if not 127 < data[0] < 192:
            original(data, addr)  # STUN, DTLS
            return
        if 191 < data[1] < 224:  # RTCP
            if on_rtcp is None:
                original(data, addr)
                return
            unprotect, deliver = lib.srtp_unprotect_rtcp, rtcp_taken
        else:
            if passthrough is not None and passthrough(data):
                original(data, addr)  # a stream this peer decodes
                return
            unprotect, deliver = lib.srtp_unprotect, on_rtp
        n = len(data)
        if n > MAX_PACKET:
            on_error()
            return
        buffer[0:n] = data
        len_p[0] = n
        if unprotect(srtp, cdata, len_p):
            on_error()
            return
        deliver(buffer, len_p[0])

    return received
