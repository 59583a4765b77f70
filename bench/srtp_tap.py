"""Take a receiving peer's RTP at its socket: decrypt in place and hand it on, nothing more.

aiortc's receive path costs a load generator ≈ 70 µs per packet (aioice's STUN check, a queue,
a coroutine wake-up, unprotect, parse); with a hundred viewers that path, not the server, is
what saturates the generator's core. Once DTLS is up, a tapped connection decrypts each RTP
packet with the connection's own SRTP session straight from the socket. STUN and DTLS still go
aiortc's way; RTCP too, unless the caller takes it (`on_rtcp`: a viewer that only counts has
nothing to learn from the server's sender reports, and aiortc's way costs ≈ 200 µs a packet,
≈ 6 % of the generator's core at 300 viewers). Both load generators (bench/forwarding_load.py
for the SFU alone, bench/loadgen/ for the side-by-side runs) use this one tap.

Every tapped socket is read by one `SocketReader` per event loop instead of asyncio's
transport: one epoll set, registered once with the loop, and each ready socket read with
`recv_into` straight into its SRTP session's buffer. asyncio would take each datagram through a
callback handle of its own, a fresh bytes object, the sender's address as a new tuple and a
copy into that buffer: in a micro-benchmark here (300 sockets, 43,000 datagrams/s, 1,200
bytes) 7.3–7.8 µs of the receiving core per datagram against 4.7–5.5 read this way. (Each
socket added to the loop with a reader of its own, tried on 2026-12-04, cost more, not less.)
"""

from __future__ import annotations

import asyncio
import select
import socket
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from pylibsrtp._binding import ffi, lib

from sfu.aiortc_hooks import dtls_transport

MAX_PACKET = 1500  # pylibsrtp's session buffer

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
    A socket whose ICE pair is nominated is read by the loop's `SocketReader`; its other
    datagrams (STUN, DTLS) reach aiortc as coming from the pair's remote address, the only
    sender of a nominated pair. Any other socket is tapped in its asyncio protocol.
    """
    dtls = dtls_transport(pc)
    if dtls is None or dtls._rx_srtp is None:
        return False
    connection = dtls.transport._connection
    remotes = {id(pair.protocol): pair.remote_addr for pair in connection._nominated.values()}
    for protocol in connection._protocols:
        handle = _Decrypting(
            dtls._rx_srtp, protocol.datagram_received, on_rtp, on_error, passthrough, on_rtcp
        )
        remote = remotes.get(id(protocol))
        transport = protocol.transport
        # the socket itself: get_extra_info gives a wrapper without recv_into
        sock = getattr(transport, "_sock", None)
        if remote is not None and sock is not None and not transport.is_closing():
            transport.pause_reading()  # from now on the reader takes this socket's datagrams
            SocketReader.of_running_loop().add(sock, handle.reader(sock, remote))
        else:
            protocol.datagram_received = handle.received
    return True


def only_socket(pc: Any) -> Any | None:
    """The UDP socket a connection receives on, when it has exactly one (one host address)."""
    dtls = dtls_transport(pc)
    protocols = dtls.transport._connection._protocols if dtls is not None else []
    if len(protocols) != 1 or protocols[0].transport is None:
        return None
    return protocols[0].transport.get_extra_info("socket")


class SocketReader:
    """Reads every tapped socket of one event loop: one epoll set, one loop callback."""

    # weak: a finished loop takes its reader (and the reader's epoll set) with it
    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SocketReader]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def of_running_loop(cls) -> SocketReader:
        loop = asyncio.get_running_loop()
        reader = cls._by_loop.get(loop)
        if reader is None or reader.epoll.closed:
            reader = cls._by_loop[loop] = cls(loop)
        return reader

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.epoll = select.epoll()
        self.readers: dict[int, Callable[[], None]] = {}
        loop.add_reader(self.epoll.fileno(), self._ready)

    def add(self, sock: socket.socket, read: Callable[[], None]) -> None:
        """Call `read()` whenever `sock` has a datagram (until the socket is closed)."""
        fd = sock.fileno()
        self.readers[fd] = read
        try:
            self.epoll.register(fd, select.EPOLLIN)
        except FileExistsError:
            self.epoll.modify(fd, select.EPOLLIN)

    def sockets(self) -> int:
        return len(self.readers)

    def _ready(self) -> None:
        readers = self.readers
        # a closed socket leaves the epoll set by itself; its fd number may come back for a
        # socket asyncio reads, which this set never holds
        for fd, _ in self.epoll.poll(0):
            read = readers.get(fd)
            if read is not None:
                read()


def direct_sockets() -> int:
    """How many sockets the running loop's reader has taken over (for reports and tests)."""
    reader = SocketReader._by_loop.get(asyncio.get_running_loop())
    return 0 if reader is None else reader.sockets()


def _datagram(view: memoryview, n: int, data: bytes | None) -> bytes:
    """The datagram in the buffer as bytes, for aiortc: `data` when asyncio gave it, else a copy."""
    return bytes(view[:n]) if data is None else data


class _Decrypting:
    """One connection's receive path after the tap, fed by asyncio or by the SocketReader."""

    def __init__(
        self,
        session: Any,
        original: Callable[[bytes, Any], None],
        on_rtp: OnRtp,
        on_error: Callable[[], None],
        passthrough: Callable[[bytes], bool] | None = None,
        on_rtcp: Callable[[], None] | None = None,
    ) -> None:
        # decrypt in place in the session's own buffer, as the SFU's RtpSink protects
        srtp, cdata, buffer = session._srtp[0], session._cdata, session._buffer
        view = memoryview(buffer)
        len_p = ffi.new("int *")

        def rtcp_taken(buffer: Any, length: int) -> None:
            if on_rtcp is not None:
                on_rtcp()

        def process(n: int, addr: Any, data: bytes | None) -> None:
            # the datagram is buffer[:n] (n <= MAX_PACKET); `data`, when given, is it as bytes
            if not 127 < view[0] < 192:
                original(_datagram(view, n, data), addr)  # STUN, DTLS
                return
            if 191 < view[1] < 224:  # RTCP
                if on_rtcp is None:
                    original(_datagram(view, n, data), addr)
                    return
                unprotect, deliver = lib.srtp_unprotect_rtcp, rtcp_taken
            else:
                if passthrough is not None:
                    packet = _datagram(view, n, data)
                    if passthrough(packet):
                        original(packet, addr)  # a stream this peer decodes
                        return
                unprotect, deliver = lib.srtp_unprotect, on_rtp
            len_p[0] = n
            if unprotect(srtp, cdata, len_p):
                on_error()
                return
            deliver(buffer, len_p[0])

        def received(data: bytes, addr: Any) -> None:
            n = len(data)
            if n > MAX_PACKET:
                if 127 < data[0] < 192:
                    on_error()  # an RTP or RTCP packet larger than any sent
                else:
                    original(data, addr)
                return
            view[:n] = data
            process(n, addr, data)

        self.received = received
        self._process, self._view, self._on_error = process, view, on_error

    def reader(self, sock: socket.socket, remote: Any) -> Callable[[], None]:
        """The SocketReader's callback for `sock`: one datagram straight into the buffer.

        STUN and DTLS reach aiortc as coming from `remote`. A datagram larger than the buffer
        (none is, once DTLS is up) counts as an error: its end is lost.
        """
        recv_into, view = sock.recv_into, self._view
        process, on_error = self._process, self._on_error
        truncated = socket.MSG_TRUNC  # recv returns the datagram's real length

        def read() -> None:
            try:
                n = recv_into(view, 0, truncated)
            except OSError:  # nothing after all, or an ICMP error once the server has gone
                return
            if n > MAX_PACKET:
                on_error()
                return
            process(n, remote, None)

        return read
