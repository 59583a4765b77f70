"""Pre-encoded media for the forwarding benchmark: encode once, replay the packets."""

from __future__ import annotations

import asyncio
import fractions
import math
import os
import random
import time
from dataclasses import dataclass

import av
from aiortc import MediaStreamTrack

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 900_000
AUDIO_RATE = 48000
AUDIO_FRAME = 960  # 20 ms


@dataclass
class EncodedClip:
    """Encoded packets of one stream, with the time base their pts are in."""

    packets: list[bytes]
    pts_step: int
    time_base: fractions.Fraction
    interval: float

    @property
    def bytes_per_second(self) -> float:
        return sum(len(p) for p in self.packets) / (len(self.packets) * self.interval)


def _video_frame(index: int, noise: list[bytes]) -> av.VideoFrame:
    # a moving gradient plus a noisy patch: enough detail for the encoder to spend its budget
    shift = (index * 6) % 256
    row = bytes((x + shift) % 256 for x in range(WIDTH))
    luma = bytearray(row * HEIGHT)
    patch = noise[index % len(noise)]
    for y in range(120):
        start = (120 + y) * WIDTH + 240
        luma[start : start + 160] = patch[y * 160 : (y + 1) * 160]
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    frame.planes[0].update(bytes(luma))
    chroma = bytes([(128 + index) % 256]) * (WIDTH * HEIGHT // 4)
    frame.planes[1].update(chroma)
    frame.planes[2].update(bytes([128]) * (WIDTH * HEIGHT // 4))
    frame.pts = index
    frame.time_base = fractions.Fraction(1, FPS)
    return frame


def encode_vp8(seconds: int = 10) -> EncodedClip:
    """VP8 640x480@30, ≈ 900 kbps, a keyframe every second (late joiners wait ≤ 1 s)."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.bit_rate = VIDEO_BITRATE
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.time_base = fractions.Fraction(1, FPS)
    codec.gop_size = FPS
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = random.Random(7)
    noise = [bytes(rng.getrandbits(8) for _ in range(160 * 120)) for _ in range(8)]
    packets: list[bytes] = []
    for index in range(seconds * FPS):
        packets += [bytes(p) for p in codec.encode(_video_frame(index, noise))]
    packets += [bytes(p) for p in codec.encode(None)]
    return EncodedClip(packets, 1, fractions.Fraction(1, FPS), 1 / FPS)


def encode_opus(seconds: int = 10) -> EncodedClip:
    """Opus 48 kHz, 20 ms packets of a 400 Hz tone."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32000
    samples = [int(8000 * math.sin(2 * math.pi * 400 * i / AUDIO_RATE)) for i in range(960)]
    pcm = b"".join(s.to_bytes(2, "little", signed=True) * 2 for s in samples)
    packets: list[bytes] = []
    for index in range(seconds * 50):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_FRAME)
        frame.planes[0].update(pcm)
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * AUDIO_FRAME
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        packets += [bytes(p) for p in codec.encode(frame)]
    return EncodedClip(packets, AUDIO_FRAME, fractions.Fraction(1, AUDIO_RATE), 0.02)


def load_clips(cache_dir: str) -> tuple[EncodedClip, EncodedClip]:
    """Encode once per machine; later runs read the packets back."""
    import pickle

    path = os.path.join(cache_dir, "forwarding-clips-v1.pickle")
    if os.path.exists(path):
        with open(path, "rb") as f:
            clips: tuple[EncodedClip, EncodedClip] = pickle.load(f)
            return clips
    clips = (encode_vp8(), encode_opus())
    os.makedirs(cache_dir, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(clips, f)
    return clips


class ReplayTrack(MediaStreamTrack):
    """Hands aiortc's sender pre-encoded packets at their real pace (no encoding)."""

    def __init__(self, kind: str, clip: EncodedClip) -> None:
        super().__init__()
        self.kind = kind
        self.clip = clip
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * self.clip.interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        data = self.clip.packets[self._index % len(self.clip.packets)]
        packet = av.Packet(data)
        packet.pts = self._index * self.clip.pts_step
        packet.time_base = self.clip.time_base
        self._index += 1
        return packet
