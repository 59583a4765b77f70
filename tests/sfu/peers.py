"""Real aiortc client peers on 127.0.0.1 for the SFU tests (no mocked media)."""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from av import AudioFrame, VideoFrame

from sfu import Producer, Router, SfuConfig, Transport
from sfu import aiortc_hooks as hooks

# clients bind outside the SFU's default range so the two never compete for ports
CLIENT_CONFIG = SfuConfig(udp_port_min=50000, udp_port_max=59999)
VIDEO_CLOCK = 90000


class SyntheticVideoTrack(MediaStreamTrack):
    """A moving bar, small enough to encode cheaply on a 2-core machine."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._count = 0
        self._start: float | None = None
        self._lumas: dict[int, bytes] = {}

    def _luma(self, count: int) -> bytes:
        x = (count * 8) % self.width
        luma = self._lumas.get(x)
        if luma is None:
            row = bytearray(16 for _ in range(self.width))
            row[x : x + 16] = bytes([235]) * len(row[x : x + 16])
            luma = self._lumas[x] = bytes(row) * self.height
        return luma

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(self._luma(self._count))
        chroma = bytes([128]) * (self.width * self.height // 4)
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = self._count * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A 400 Hz tone (or silence), so audio levels are meaningful."""

    kind = "audio"

    def __init__(self, amplitude: float = 0.5) -> None:
        super().__init__()
        self.amplitude = amplitude
        # 400 Hz: exactly 8 periods in a 20 ms frame, so one frame of samples repeats
        peak = amplitude * 32767
        samples = [int(peak * math.sin(2 * math.pi * 400 * i / 48000)) for i in range(960)]
        self._wave = array.array("h", samples).tobytes()
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._samples / 48000
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(self._wave)
        frame.sample_rate = 48000
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, 48000)
        self._samples += 960
        return frame


def client_pc() -> RTCPeerConnection:
    # never Google STUN, loopback only
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


async def set_local(pc: RTCPeerConnection, description: RTCSessionDescription) -> None:
    hooks.use_ice_addresses(pc, CLIENT_CONFIG)
    await pc.setLocalDescription(description)


def prefer(transceiver: Any, mime: str) -> None:
    caps = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    chosen = [c for c in caps if c.mimeType.lower() == mime.lower()]
    transceiver.setCodecPreferences(chosen[:1] + [c for c in caps if c.mimeType.endswith("rtx")])


class Publisher:
    """A client that sends tracks to the SFU by making an offer."""

    def __init__(self, router: Router, peer_id: str) -> None:
        self.router = router
        self.peer_id = peer_id
        self.pc = client_pc()
        self.transport: Transport | None = None
        self.producers: list[Producer] = []

    async def publish(self, *tracks: MediaStreamTrack, video_codec: str = "video/VP8") -> None:
        if self.transport is None:
            self.transport = await self.router.create_transport(self.peer_id)
        for track in tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            if track.kind == "video":
                prefer(transceiver, video_codec)
        self.transport.producer_added.connect(self.producers.append)
        await set_local(self.pc, await self.pc.createOffer())
        answer = await self.transport.handle_offer(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


class Subscriber:
    """A client that receives what the SFU offers and decodes it."""

    def __init__(self, router: Router, peer_id: str) -> None:
        self.router = router
        self.peer_id = peer_id
        self.pc = client_pc()
        self.transport: Transport | None = None
        self.frames: dict[str, int] = {}  # mid -> frames decoded
        self.first_frame_at: dict[str, float] = {}
        self.tracks: dict[str, MediaStreamTrack] = {}
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    async def subscribe(self, *producers: Producer) -> list[Any]:
        if self.transport is None:
            self.transport = await self.router.create_transport(self.peer_id)
        consumers = [await self.router.consume(p, self.transport) for p in producers]
        await self.negotiate()
        return consumers

    async def negotiate(self) -> None:
        assert self.transport is not None
        offer = await self.transport.create_offer()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await set_local(self.pc, await self.pc.createAnswer())
        await self.transport.handle_answer(self.pc.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        self.tracks[mid] = track
        self.frames[mid] = 0
        self._readers.append(asyncio.ensure_future(self._read(mid, track)))

    async def _read(self, mid: str, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.frames[mid] += 1
                self.first_frame_at.setdefault(mid, time.monotonic())
        except Exception:
            return

    def total(self, kind: str) -> int:
        return sum(n for mid, n in self.frames.items() if self.tracks[mid].kind == kind)

    async def close(self) -> None:
        await self.pc.close()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


async def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `condition` until true; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)


async def packets_received(pc: RTCPeerConnection, kind: str) -> int:
    """Packets the client's receivers of `kind` got, from aiortc's own inbound-rtp stats."""
    total = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind != kind:
            continue
        report = await transceiver.receiver.getStats()
        total += sum(s.packetsReceived for s in report.values() if s.type == "inbound-rtp")
    return total


@contextlib.asynccontextmanager
async def video_flowing() -> AsyncIterator[tuple[Publisher, Subscriber]]:
    """A publisher's video reaching one viewer through a router (DTLS and ICE done)."""
    router = Router()
    publisher, viewer = Publisher(router, "p"), Subscriber(router, "v")
    try:
        await publisher.publish(SyntheticVideoTrack())
        await viewer.subscribe(*publisher.producers)
        await wait_for(lambda: viewer.total("video") >= 5, 10, "frames")
        yield publisher, viewer
    finally:
        await viewer.close()
        await publisher.close()
        await router.close()
