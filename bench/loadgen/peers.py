"""Client peers of the load generator: the replaying publisher, light and full subscribers.

A light subscriber takes each packet right after SRTP unprotect and only counts it: SSRC,
sequence number, gaps. Until its DTLS is up that is at aiortc's
`RTCDtlsTransport._handle_rtp_data`; from then on at the socket (bench/srtp_tap.py), skipping
aiortc's receive path. Nothing is parsed further or decoded, so one process can stand for
hundreds of viewers. A full
subscriber counts the same way and also lets aiortc depacketise and decode, to prove the
stream is a valid picture (decoded frames per second).
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from bench import srtp_tap
from sfu.aiortc_hooks import RECEIVE_SIZE

from .media import VIDEO_BITRATE, Clip, HeldTrack, LiveVideoTrack, ReplayTrack

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
VIDEO_SIZE_HINT = 400  # bytes: Opus packets here are ~200, VP8 ones ~1,100
_SEQ_SSRC = struct.Struct("!2xH4xI")


def use_ice_address(address: str) -> None:
    """Make aioice offer exactly this host address (it never gathers 127.0.0.1 by itself)."""

    def addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [address]

    aioice.ice.get_host_addresses = addresses


RECEIVE_BUFFER = 4 << 20


def tune_receive_sockets() -> None:
    """Give every UDP socket this process opens a 4 MB receive buffer and a 64 KiB read size.

    Several streams' keyframes can arrive at one socket in the same millisecond; the default
    208 kB buffer then overflows whenever the generator's loop is busy for a moment. Drops that
    remain are counted apart (generator_udp_drops) and never blamed on the server.
    asyncio reads each datagram into a fresh 256 KiB buffer, which costs ≈ 9 µs more per packet
    than 64 KiB (sfu.aiortc_hooks.RECEIVE_SIZE): at 300 viewers, ≈ 0.4 of the generator's core.
    """
    loop = asyncio.get_running_loop()
    original = loop.create_datagram_endpoint

    async def create(*args: Any, **kwargs: Any) -> Any:
        transport, protocol = await original(*args, **kwargs)
        transport.max_size = RECEIVE_SIZE
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # root may exceed net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        return transport, protocol

    loop.create_datagram_endpoint = create  # type: ignore[method-assign]


def new_pc() -> RTCPeerConnection:
    # never Google STUN: everything stays on 127.0.0.0/8
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


SIOCGSTAMPNS = 0x8907  # Linux: the kernel receive time of the last datagram read from a socket
_TIMESPEC = struct.Struct("@qq")


def kernel_arrival(sock: socket.socket) -> float | None:
    """When the kernel queued the last datagram read from `sock` (CLOCK_REALTIME, seconds).

    Unlike the time the generator's loop got round to the packet, this excludes the
    generator's own receive backlog: under load that backlog, not the server, was most of the
    measured delay.
    """
    try:
        sec, nsec = _TIMESPEC.unpack(fcntl.ioctl(sock.fileno(), SIOCGSTAMPNS, bytes(16)))
    except OSError:
        return None
    return sec + nsec / 1e9 if sec else None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def probe_positions(first: int, count: int, probes: int) -> set[int]:
    """Join positions of the delay probes: spread evenly from `first` to the last viewer.

    An SFU sends a packet's copies one after the other in join order, so the last viewer's copy
    leaves last; probes at the front only would see the shortest delays.
    """
    n = min(probes, count - first)
    if n <= 0:
        return set()
    if n == 1:
        return {first}
    return {first + round(k * (count - first - 1) / (n - 1)) for k in range(n)}


class LatencyProbe:
    """Send time of each packet the publisher sends, keyed by the tail of its payload.

    The SFUs rewrite headers but not payloads, so the last bytes of a packet identify it at
    the subscriber. Send time: just before the publisher's stack protects and sends it. Arrival:
    the kernel's receive timestamp at the subscriber's socket when there is one (tapped light
    subscribers), else the time the generator read it. The difference is the delay through the
    server plus loopback; the no-server baseline measures the same path without a server.
    """

    def __init__(self) -> None:
        self.sent: dict[bytes, float] = {}
        self.delays: list[float] = []
        self.recording = False
        self.kernel_stamped = 0  # arrivals timed by the kernel (the rest: by the generator)

    def on_send(self, data: bytes) -> None:
        self.sent[data[-12:]] = time.time()

    def on_receive(self, data: bytes, arrival: float | None = None) -> None:
        if self.recording:
            sent = self.sent.get(data[-12:])
            if sent is not None:
                if arrival is None:
                    arrival = time.time()
                else:
                    self.kernel_stamped += 1
                self.delays.append(arrival - sent)


@dataclass
class StreamCount:
    """Packets of one SSRC: received, highest extended sequence number, gaps seen."""

    last_seq: int
    ext_seq: int
    first_seq: int
    received: int = 1
    gaps: int = 0


@dataclass
class RtpCounter:
    """Counts decrypted RTP packets of one peer connection, per SSRC."""

    streams: dict[int, StreamCount] = field(default_factory=dict)
    probe: LatencyProbe | None = None
    # the socket a tapped probe reads from: its kernel receive time is the arrival
    stamp_socket: socket.socket | None = None

    decrypt_errors: int = 0
    rtcp_received: int = 0  # RTCP packets taken at the socket (a light viewer's)

    def count(self, data: bytes) -> None:
        self.count_in(data, len(data))

    def count_in(self, buffer: Any, length: int) -> None:
        """Count the decrypted packet buffer[:length]."""
        seq, ssrc = _SEQ_SSRC.unpack_from(buffer)
        s = self.streams.get(ssrc)
        if s is None:
            self.streams[ssrc] = StreamCount(seq, seq, seq)
        else:
            s.received += 1
            delta = (seq - s.last_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                if delta > 1:
                    s.gaps += delta - 1
                s.ext_seq += delta
                s.last_seq = seq
        if self.probe is not None:
            sock = self.stamp_socket
            arrival = kernel_arrival(sock) if sock is not None else None
            self.probe.on_receive(bytes(buffer[length - 12 : length]), arrival)

    def count_rtcp(self) -> None:
        self.rtcp_received += 1

    def decrypt_error(self) -> None:
        self.decrypt_errors += 1

    def snapshot(self) -> dict[int, tuple[int, int, int]]:
        """ssrc -> (received, expected since the first packet, gaps)."""
        return {
            ssrc: (s.received, s.ext_seq - s.first_seq + 1, s.gaps)
            for ssrc, s in self.streams.items()
        }


def window(
    before: dict[int, tuple[int, int, int]], after: dict[int, tuple[int, int, int]]
) -> tuple[int, int, int]:
    """(received, expected, gaps) between two snapshots of one counter."""
    received = expected = gaps = 0
    for ssrc, (rcv, exp, gap) in after.items():
        rcv0, exp0, gap0 = before.get(ssrc, (0, 0, 0))
        received += rcv - rcv0
        expected += exp - exp0
        gaps += gap - gap0
    return received, max(expected, received), gaps


def picks_video(decoded: set[int], limit: int, data: bytes) -> bool:
    """Whether a packet belongs to one of the (at most `limit`) video streams a peer decodes.

    A stream counts as video once a packet of it is larger than any Opus packet; the first
    `limit` such streams are picked, for good.
    """
    ssrc = _SEQ_SSRC.unpack_from(data)[1]
    if ssrc in decoded:
        return True
    if len(decoded) < limit and len(data) >= VIDEO_SIZE_HINT:
        decoded.add(ssrc)
        return True
    return False


def hook_counter(
    pc: RTCPeerConnection,
    counter: RtpCounter,
    *,
    light: bool,
    decode_videos: int | None = None,
    decoded: set[int] | None = None,
) -> None:
    """Count every RTP packet of `pc` after unprotect; a light peer stops there.

    A full peer hands packets on to aiortc's receivers (which decode), but only those of the
    `decode_videos` video streams it picks (in `decoded`, shared with its tap): in a meeting a
    full party would otherwise decode five 640x480 streams and starve the generator.
    """
    picked: set[int] = set() if decoded is None else decoded
    for transceiver in pc.getTransceivers():
        dtls: Any = transceiver.receiver.transport
        if dtls is None or getattr(dtls, "_bench_hooked", False):
            continue
        original = dtls._handle_rtp_data

        if light:

            async def handle(data: bytes, arrival_time_ms: int) -> None:
                counter.count(data)

        else:

            async def handle(data: bytes, arrival_time_ms: int, _original: Any = original) -> None:
                counter.count(data)
                if decode_videos is not None and not picks_video(picked, decode_videos, data):
                    return
                await _original(data, arrival_time_ms=arrival_time_ms)

        dtls._handle_rtp_data = handle
        dtls._bench_hooked = True


PACE_FACTOR = 2.5  # browsers pace video at 2.5x its target bitrate (WebRTC's pacer)


class Pacer:
    """Spreads one peer's video packets in time, as a browser's pacer does.

    aiortc sends all packets of a frame back to back; a 20 KB keyframe then reaches the server
    as one burst of ~20 packets, and every copy of the last one waits behind the copies of the
    others. Browsers never send like that: WebRTC paces video at 2.5x the target bitrate (audio
    goes unpaced). Each video packet leaves when its budget allows; a lag under 1 ms is sent at
    once (the event loop cannot sleep shorter).
    """

    def __init__(self, bitrate: float) -> None:
        self.bytes_per_second = PACE_FACTOR * bitrate / 8
        self.next = 0.0  # monotonic time the next video packet may leave

    def reserve(self, size: int, now: float) -> float:
        """The time a packet of `size` bytes ready at `now` may leave; books its budget."""
        start = max(now, self.next)
        self.next = start + size / self.bytes_per_second
        return start

    async def wait(self, size: int) -> None:
        now = time.monotonic()
        start = self.reserve(size, now)
        if start - now > 0.001:
            await asyncio.sleep(start - now)


def hook_sender(
    pc: RTCPeerConnection, probe: LatencyProbe | None, pace_bitrate: float | None
) -> None:
    """Pace the video RTP packets a peer sends, then record each send time for the probe.

    The send time is taken after the pacer, just before the stack protects the packet, so the
    delay measured is what the path from here on adds.
    """
    video_ssrcs = {
        t.sender._ssrc for t in pc.getTransceivers() if t.kind == "video" and t.sender.track
    }
    pacer = Pacer(pace_bitrate) if pace_bitrate and video_ssrcs else None
    for transceiver in pc.getTransceivers():
        dtls: Any = transceiver.sender.transport
        if dtls is None or getattr(dtls, "_bench_hooked_sender", False):
            continue
        original = dtls._send_rtp

        async def send(data: bytes, _original: Any = original) -> None:
            if not 192 < data[1] < 224:  # RTP, not RTCP
                if pacer is not None and int.from_bytes(data[8:12], "big") in video_ssrcs:
                    await pacer.wait(len(data))
                if probe is not None:
                    probe.on_send(data)
            await _original(data)

        dtls._send_rtp = send
        dtls._bench_hooked_sender = True


class Subscriber:
    """One receiving peer: answers the server's offers, counts packets, maybe decodes."""

    def __init__(
        self,
        *,
        full: bool,
        probe: LatencyProbe | None = None,
        publish: bool = False,
        decode_videos: int | None = None,
    ) -> None:
        self.full = full
        self.pc = new_pc()
        if publish:
            # a party of a meeting: sends camera and microphone too, once connected, from
            # bench/loadgen/party_media.py (these tracks stand for them in the negotiation)
            self.pc.addTrack(HeldTrack("audio"))
            self.pc.addTrack(HeldTrack("video"))
        self.counter = RtpCounter(probe=probe)
        self.tapped = False
        self.frames: dict[str, list[float]] = {}  # track id -> decode times (full only)
        self.decode_videos = decode_videos
        self.decoded: set[int] = set()  # SSRCs of the video streams this full peer decodes
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected":
                if not self.full and not self.tapped:
                    # from now on count at the socket, skipping aiortc's receive path
                    self.tapped = srtp_tap.tap(
                        self.pc,
                        self.counter.count_in,
                        self.counter.decrypt_error,
                        on_rtcp=self.counter.count_rtcp,
                    )
                elif self.decode_videos is not None and not self.tapped:
                    # a full party of a meeting: only the videos it decodes go aiortc's way
                    limit = self.decode_videos
                    self.tapped = srtp_tap.tap(
                        self.pc,
                        self.counter.count_in,
                        self.counter.decrypt_error,
                        lambda data: picks_video(self.decoded, limit, data),
                    )
                if self.tapped and self.counter.probe is not None:
                    self.counter.stamp_socket = srtp_tap.only_socket(self.pc)
                self.connected.set()
            elif self.pc.connectionState in ("failed", "closed"):
                self.failed.set()

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if self.full:
                self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        self._hook()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._hook()
        return self.pc.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        self._hook()

    async def offer(self) -> str:
        if not self.pc.getTransceivers():
            # a receive-only client still offers first: one recvonly m-line
            self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._hook()
        return self.pc.localDescription.sdp

    def _hook(self) -> None:
        hook_counter(
            self.pc,
            self.counter,
            light=not self.full,
            decode_videos=self.decode_videos,
            decoded=self.decoded,
        )

    def mids(self) -> dict[str, str]:
        """mid -> kind of each sending m-line."""
        return {
            t.mid: t.kind
            for t in self.pc.getTransceivers()
            if t.mid is not None and t.sender.track is not None
        }

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                if track.kind == "video":
                    self.frames.setdefault(track.id, []).append(time.monotonic())
        except MediaStreamError:
            return

    def fps(self, start: float, end: float) -> float:
        """Decoded frames per second of the slowest video track that decoded anything."""
        rates = [
            sum(1 for t in times if start <= t < end) / (end - start)
            for times in self.frames.values()
        ]
        return min(rates) if rates else 0.0

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


class Publisher:
    """The replaying publisher: VP8 + Opus from the pre-encoded clip."""

    def __init__(self, clip: Clip, probe: LatencyProbe | None = None, live: bool = False) -> None:
        self.pc = new_pc()
        self.probe = probe
        # the live encoder serves the browser join test: left unpaced, as in earlier runs, so
        # join times stay comparable
        self.live = live
        self.pc.addTrack(ReplayTrack("audio", clip.audio))
        self.pc.addTrack(LiveVideoTrack(clip) if live else ReplayTrack("video", clip.video))
        self.connected = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        hook_sender(self.pc, self.probe, None if self.live else VIDEO_BITRATE)

    def mids(self) -> dict[str, str]:
        """mid -> kind of each sending m-line."""
        return {t.mid: t.kind for t in self.pc.getTransceivers() if t.mid is not None}

    async def close(self) -> None:
        await self.pc.close()


AnswerFn = Callable[[str], Awaitable[str]]
