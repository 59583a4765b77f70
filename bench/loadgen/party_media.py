"""The meeting parties' camera and microphone: sent from one timer, not through aiortc's sender.

A party of a six-party meeting publishes ≈ 140 packets a second. Through aiortc's sender each
packet costs the generator a frame coroutine's share, VP8 packetizing in Python, an RtpPacket
serialized, aiortc's and aioice's send layers and a sleep of the pacer; with a dozen meetings
that path, not the server, is what saturated the generator's core. Here the clip is packetized
once; each party's packet is that payload with the party's own header (sequence number,
timestamp, SSRC, marker, mid and abs-send-time as aiortc would write them) and VP8 picture id,
protected in place and sent on the party's selected pair by the SFU's own `RtpSink`. One heap of
due times drives every party: video leaves as `Pacer` would let it (2.5× its bitrate, a frame
every 1/30 s), audio every 20 ms, each party at a random phase, as independent cameras are.

aiortc's sender stays for the negotiation and for RTCP: its track (`HeldTrack`) never yields a
frame, and the counters its sender reports carry are kept current from here, so the server gets
true sender reports. Keyframes come with the clip (one a second); a party does not answer the
server's keyframe requests or NACKs (a light party never sees them: the tap counts its RTCP).
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from typing import Any

from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket

from sfu.aiortc_hooks import RtpSink
from sfu.producer import NTP_EPOCH_OFFSET

from .media import AUDIO_PTIME, AUDIO_RATE, FPS, VIDEO_BITRATE, Clip, HeldTrack
from .peers import LatencyProbe, Pacer

SOON = 0.001  # a packet due within this is sent now (the event loop cannot sleep shorter)
# aiortc's sender keeps its report counters (and its extension ids) in private attributes
SENDER = "_RTCRtpSender__"
SR_NTP, SR_RTP, SR_PACKETS, SR_OCTETS = (
    SENDER + name for name in ("ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count")
)


def ntp_now() -> int:
    return int((time.time() + NTP_EPOCH_OFFSET) * (1 << 32))


class _Stream:
    """One party's audio or video: its header, its place in the clip, its report counters."""

    def __init__(
        self,
        transceiver: Any,
        frames: list[list[bytes]],
        period: float,
        step: int,
        start: int,
        probe: LatencyProbe | None,
    ) -> None:
        sender = transceiver.sender
        self.sender = sender
        self.sink = RtpSink()
        self.sink.bind(sender.transport)
        self.ssrc = sender._ssrc
        self.pt = transceiver._codecs[0].payloadType
        self.b0, self.ext_head, self.ext_tail = _header(sender, self.pt, transceiver.mid)
        self.frames, self.period, self.step = frames, period, step
        self.probe = probe
        self.video = transceiver.kind == "video"
        self.pacer = Pacer(VIDEO_BITRATE)
        self.seq = random.randrange(1 << 16)
        self.ts0 = random.randrange(1 << 32)
        self.picture_id = random.randrange(1 << 15)
        self.clip_index = start
        self.frame = 0  # frames sent since the start
        self.part = 0  # the next packet's index in the frame
        self.t0 = time.monotonic() + random.uniform(0, period)  # the first packet's due time
        self.packets = self.octets = self.unsent = 0

    def send(self, now: float) -> float:
        """Send the packet due now; the monotonic time the stream's next packet is due."""
        payloads = self.frames[self.clip_index % len(self.frames)]
        payload = payloads[self.part]
        last = self.part == len(payloads) - 1
        ntp = ntp_now()
        timestamp = (self.ts0 + self.frame * self.step) & 0xFFFFFFFF
        parts = [self.ext_head]
        if self.ext_tail is not None:
            parts += (((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big"), self.ext_tail)
        if self.video:  # the party's own picture id, M bit set (15 bits)
            parts += (payload[:2], (0x8000 | self.picture_id).to_bytes(2, "big"), payload[4:])
        else:
            parts.append(payload)
        tail = b"".join(parts)
        if self.probe is not None:
            self.probe.on_send(payload)  # keyed by the payload's tail, as the probe reads it
        if self.sink.send_packet(
            self.b0, self.pt | 0x80 if last else self.pt, self.seq, timestamp, self.ssrc, tail
        ):
            self.packets += 1
            self.octets += len(payload)
            sender = self.sender
            setattr(sender, SR_NTP, ntp)
            setattr(sender, SR_RTP, timestamp)
            setattr(sender, SR_PACKETS, self.packets)
            setattr(sender, SR_OCTETS, self.octets)
        else:
            self.unsent += 1
        self.seq = (self.seq + 1) & 0xFFFF
        due = now
        if self.video:  # paced as aiortc's packets are (hook_sender)
            self.pacer.reserve(12 + len(tail), now)
            due = self.pacer.next
        if last:
            self.part = 0
            self.frame += 1
            self.clip_index += 1
            self.picture_id = (self.picture_id + 1) & 0x7FFF
            due = max(due, self.t0 + self.frame * self.period)
        else:
            self.part += 1
        return due


def _header(sender: Any, pt: int, mid: str | None) -> tuple[int, bytes, bytes | None]:
    """(first header byte, header extensions before / after the abs-send-time value).

    Serialized by aiortc with the sender's negotiated extension ids, twice with different
    abs-send-time values: where they differ is where each packet's value goes. Without
    abs-send-time negotiated, the first part is the whole extension block and the second None.
    """
    extensions = getattr(sender, SENDER + "rtp_header_extensions_map")

    def serialized(value: int) -> bytes:
        packet = RtpPacket(payload_type=pt)
        packet.ssrc = sender._ssrc
        packet.extensions.mid = mid
        packet.extensions.abs_send_time = value
        return packet.serialize(extensions)

    zero, ones = serialized(0), serialized(0xFFFFFF)
    differ = [i for i in range(12, len(zero)) if zero[i] != ones[i]]
    if not differ:  # not negotiated for this stream (aiortc offers it for video only)
        return zero[0], zero[12:], None
    return zero[0], zero[12 : differ[0]], zero[differ[-1] + 1 :]


class PartyMedia:
    """Sends every meeting party's replayed camera and microphone from one task."""

    def __init__(self, clip: Clip) -> None:
        self.video = [Vp8Encoder._packetize(frame, 0) for frame in clip.video]
        self.audio = [[packet] for packet in clip.audio]
        self.streams: list[_Stream] = []
        self._heap: list[tuple[float, int, _Stream]] = []
        self._task: asyncio.Future[None] | None = None

    def add(self, pc: Any, probe: LatencyProbe | None = None) -> None:
        """Send the media of `pc`'s held tracks (its connection must be up)."""
        start = random.randrange(len(self.video))  # keyframes of parties do not come at once
        for transceiver in pc.getTransceivers():
            if not isinstance(transceiver.sender.track, HeldTrack):
                continue
            if transceiver.kind == "video":
                stream = _Stream(transceiver, self.video, 1 / FPS, 90_000 // FPS, start, probe)
            else:
                step = int(AUDIO_RATE * AUDIO_PTIME)
                stream = _Stream(transceiver, self.audio, AUDIO_PTIME, step, start * 5 // 3, probe)
            self.streams.append(stream)
            heapq.heappush(self._heap, (stream.t0, len(self.streams), stream))

    def start(self) -> None:
        if self._task is None and self._heap:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def unsent(self) -> int:
        """Packets a full socket buffer or a closed pair refused."""
        return sum(s.unsent for s in self.streams)

    async def _run(self) -> None:
        heap = self._heap
        monotonic, replace = time.monotonic, heapq.heapreplace
        while True:
            now = monotonic()
            while heap[0][0] <= now + SOON:
                _, n, stream = heap[0]
                replace(heap, (stream.send(now), n, stream))
                now = monotonic()
            await asyncio.sleep(heap[0][0] - now)
