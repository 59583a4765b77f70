"""Pre-encoded media for the publisher: VP8 640x480@30 (~900 kbps) and Opus, encoded once.

The load generator replays these packets, so that its CPU goes to receiving, not to encoding.
The clip is cached on disk (pickle of raw packets) and loops seamlessly: it starts with a
keyframe and a keyframe follows every `GOP` frames.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import os
import pickle
import random
import time
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 900_000
GOP = 30  # a keyframe every second: full subscribers and late joiners start within 1 s
CLIP_SECONDS = 10
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.02
CACHE_VERSION = 3


@dataclass(frozen=True)
class EncodedPacket:
    """One encoded frame as aiortc's `Encoder.pack()` wants it (bytes, pts, time_base)."""

    data: bytes
    pts: int
    time_base: fractions.Fraction

    def __bytes__(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class Clip:
    """The encoded clip: video frames at 1/90000, audio packets at 1/48000."""

    video: list[bytes]
    audio: list[bytes]

    @property
    def video_kbps(self) -> float:
        return sum(len(v) for v in self.video) * 8 / CLIP_SECONDS / 1000

    @property
    def audio_kbps(self) -> float:
        return sum(len(a) for a in self.audio) * 8 / CLIP_SECONDS / 1000


def _pattern() -> bytes:
    # a blocky texture twice as wide as the picture; panning across it gives motion
    rnd = random.Random(7)
    w, h = WIDTH * 2, HEIGHT
    rows = []
    for by in range(h // 16):
        row = bytearray()
        for _ in range(w // 16):
            row += bytes([rnd.randrange(40, 220)]) * 16
        rows.extend([bytes(row)] * 16)
        _ = by
    return b"".join(rows)


def _frames() -> list[av.VideoFrame]:
    pattern = _pattern()
    rnd = random.Random(11)
    noise = bytes(rnd.randrange(256) for _ in range(200 * 150 * 4))
    chroma = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)
    frames = []
    for i in range(FPS * CLIP_SECONDS):
        shift = (i * 4) % WIDTH
        y = bytearray()
        for r in range(HEIGHT):
            start = r * WIDTH * 2 + shift
            y += pattern[start : start + WIDTH]
        # a moving box of fresh noise keeps the encoder busy, like a face and hands would
        bx = int((WIDTH - 200) * (0.5 + 0.5 * math.sin(i / 15)))
        by = int((HEIGHT - 150) * (0.5 + 0.5 * math.cos(i / 20)))
        off = (i * 977) % (len(noise) - 200 * 150)
        for r in range(150):
            o = (by + r) * WIDTH + bx
            y[o : o + 200] = noise[off + r * 200 : off + r * 200 + 200]
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane, data in zip(frame.planes, (bytes(y), chroma, chroma), strict=True):
            _fill(plane, data, plane.width)
        frame.pts = i
        frame.time_base = fractions.Fraction(1, FPS)
        frames.append(frame)
    return frames


def _fill(plane: av.video.plane.VideoPlane, data: bytes, width: int) -> None:
    if plane.line_size == width:
        plane.update(data)
        return
    padded = bytearray(plane.line_size * plane.height)
    for r in range(plane.height):
        padded[r * plane.line_size : r * plane.line_size + width] = data[
            r * width : (r + 1) * width
        ]
    plane.update(bytes(padded))


def _encode_video() -> list[bytes]:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = WIDTH, HEIGHT
    codec.pix_fmt = "yuv420p"
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.time_base = fractions.Fraction(1, FPS)
    codec.bit_rate = VIDEO_BITRATE
    codec.gop_size = GOP
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(VIDEO_BITRATE),
        "maxrate": str(VIDEO_BITRATE),
        "b": str(VIDEO_BITRATE),
        "keyint_min": str(GOP),
        "g": str(GOP),
    }
    out: list[bytes] = []
    for frame in _frames():
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out


def _encode_audio() -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 48_000
    samples = int(AUDIO_RATE * AUDIO_PTIME)
    out: list[bytes] = []
    phase = 0.0
    noise = random.Random(1)
    total = int(CLIP_SECONDS * AUDIO_RATE)
    for i in range(int(CLIP_SECONDS / AUDIO_PTIME)):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        pcm = bytearray()
        for k in range(samples):
            # a tone gliding between 240 and 640 Hz, once over the clip, and a little noise:
            # no two packets alike (a steady 440 Hz tone repeated its packets every 100 ms, and
            # the delay probe, which knows a packet by its last bytes, then matched arrivals
            # more than 100 ms late to a later send)
            glide = math.sin(2 * math.pi * (i * samples + k) / total)
            v = int(8000 * math.sin(phase)) + noise.randint(-400, 400)
            phase += 2 * math.pi * (440 + 200 * glide) / AUDIO_RATE
            pcm += v.to_bytes(2, "little", signed=True) * 2
        frame.planes[0].update(bytes(pcm))
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        out.extend(bytes(p) for p in codec.encode(frame))
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("MADOGUCHI_BENCH_CACHE", "/tmp/madoguchi-bench-cache"))


def load_clip() -> Clip:
    """Return the clip, encoding it (a few seconds) the first time."""
    path = cache_dir() / f"clip-v{CACHE_VERSION}.pickle"
    if path.exists():
        with path.open("rb") as f:
            clip: Clip = pickle.load(f)
        return clip
    clip = Clip(video=_encode_video(), audio=_encode_audio())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(clip, f)
    tmp.replace(path)
    return clip


class ReplayTrack(MediaStreamTrack):
    """Replays encoded packets in real time, looping; aiortc packetises them without encoding."""

    def __init__(self, kind: str, packets: list[bytes], start: int = 0) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        if kind == "video":
            self._step, self._period = 90_000 // FPS, 1 / FPS
            self._time_base = fractions.Fraction(1, 90_000)
        else:
            self._step, self._period = int(AUDIO_RATE * AUDIO_PTIME), AUDIO_PTIME
            self._time_base = fractions.Fraction(1, AUDIO_RATE)
        self._index = 0
        self._offset = start  # where in the clip to begin
        self._start: float | None = None

    async def recv(self) -> EncodedPacket:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * self._period
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = self._packets[(self._offset + self._index) % len(self._packets)]
        packet = EncodedPacket(data, self._index * self._step, self._time_base)
        self._index += 1
        return packet


class HeldTrack(MediaStreamTrack):
    """A track whose aiortc sender never gets a frame: a meeting party's media goes another
    way (bench/loadgen/party_media.py); the track is there for the negotiation."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> EncodedPacket:  # type: ignore[override]
        await asyncio.get_running_loop().create_future()  # until the sender is stopped
        raise MediaStreamError


class LiveVideoTrack(MediaStreamTrack):
    """Raw frames (the clip's first second, decoded) for aiortc to encode live.

    Used where a keyframe must come when asked (a browser joining): a replayed clip has one
    only every `GOP` frames, a live encoder answers the SFU's keyframe request at once.
    """

    kind = "video"

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        codec = av.CodecContext.create("vp8", "r")
        self._frames = []
        for data in clip.video[:FPS]:
            self._frames.extend(codec.decode(av.Packet(data)))
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._index / FPS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = self._frames[self._index % len(self._frames)]
        frame.pts = self._index * (90_000 // FPS)
        frame.time_base = fractions.Fraction(1, 90_000)
        self._index += 1
        return frame
