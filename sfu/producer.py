"""One incoming track of a participant, forwarded to its consumers without decoding."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import uuid
from typing import TYPE_CHECKING, Any

from . import aiortc_hooks as hooks
from .consumer import forward_group
from .errors import ClosedError
from .nack_tracker import NackTracker
from .receive_stats import ReceiveStats
from .rtp_packet_view import RtpPacketView, is_h264_keyframe_start, is_vp8_keyframe_start
from .signal import Signal

if TYPE_CHECKING:
    from .consumer import Consumer
    from .transport import Transport

logger = logging.getLogger(__name__)

KEYFRAME_MIN_INTERVAL = 0.5  # seconds between two keyframe requests to one publisher
FANOUT_GROUP = 16  # copies protected before they are sent (see aiortc_hooks.send_batch)
CACHE_SIZE = 1024  # packets kept for NACKs (≈ 7 s of 900 kbps video)
REMB_MAX_AGE = 5.0  # seconds a consumer's bandwidth estimate stays valid
# what a publisher may send while no viewer has estimated its bandwidth (bits per second)
REMB_CEILING = 2_500_000
NTP_EPOCH_OFFSET = 2208988800


# a cached packet: RtpPacketView's arguments (sequence number first)
CachedPacket = tuple[int, int, int, bytes, int, int, "tuple[bool, int] | None", bool]


def abs_send_time_now() -> int:
    """The abs-send-time extension value for now (6.18 fixed-point seconds, 24 bits)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * (1 << 18)) & 0xFFFFFF


class Producer:
    """One incoming track (one m-line the client sends); owns its packet cache."""

    def __init__(
        self, transport: Transport, transceiver: Any, codec: Any, track_id: str | None
    ) -> None:
        self.id = uuid.uuid4().hex
        self.transport = transport
        self.peer_id = transport.peer_id
        self.kind: str = transceiver.kind
        self.mid: str = transceiver.mid
        self.codec = codec
        self.mime_type: str = codec.mimeType.lower()
        self.clock_rate: int = codec.clockRate
        self.track_id = track_id
        self.paused = False
        self.closed = False
        self.consumers: dict[str, Consumer] = {}
        self.closed_signal: Signal[Producer] = Signal("producer.closed")
        self.ssrc: int | None = None
        self.rtx_ssrc: int | None = None
        self._transceiver = transceiver
        self._pt: int = codec.payloadType
        self._rtx_pt: int | None = None
        # the forwarding consumers in groups of FANOUT_GROUP (the hot loop reads only this)
        self._groups: list[list[Consumer]] = []
        # the NACK cache holds each packet as a plain tuple (RtpPacketView's arguments): the
        # garbage collector stops tracking a tuple of numbers and bytes once it has seen it,
        # so seven seconds of packets add nothing to its older generations' scans
        self._cache: list[CachedPacket | None] = [None] * CACHE_SIZE
        self._stats = ReceiveStats(self.clock_rate)
        self._nacks = NackTracker() if self.kind == "video" else None
        self._is_keyframe = (
            is_h264_keyframe_start if self.mime_type == "video/h264" else is_vp8_keyframe_start
        )
        self._started = False
        self._keyframe_last = 0.0
        self._keyframe_handle: asyncio.TimerHandle | None = None
        self._keyframe_pending = False
        # packets (and their payload bytes) handed to the consumers: a consumer's own counts
        # are the difference between two readings (see Consumer.packets_sent)
        self.forwarded = 0
        self.forwarded_bytes = 0
        # newest packet, for consumers that stop and later resume (see Consumer.snapshot)
        self.last_seq = 0
        self.last_ts = 0
        self.last_time = 0.0
        # last sender report of the publisher: NTP time, RTP time, local arrival
        self.sr_ntp = 0
        self.sr_rtp = 0
        self.sr_time = 0.0
        self.packets_dropped = 0
        self.nacks_sent = 0
        self.keyframe_requests_sent = 0
        hooks.attach_receiver(transceiver.receiver, self._on_start, self._on_rtp, self._on_rtcp)
        hooks.release_receiver_state(transceiver.receiver)

    # --- control ------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop forwarding to every consumer: no packet of this producer leaves the router."""
        self._check_open()
        if not self.paused:
            self.paused = True
            self.transport.router.active_speaker.remove(self)
            for consumer in list(self.consumers.values()):
                consumer.update()

    def resume(self) -> None:
        """Forward again; each consumer waits for (and requests) a keyframe."""
        self._check_open()
        if self.paused:
            self.paused = False
            for consumer in list(self.consumers.values()):
                consumer.update()

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per KEYFRAME_MIN_INTERVAL."""
        if self.closed or self.kind != "video":
            return
        wait = self._keyframe_last + KEYFRAME_MIN_INTERVAL - time.monotonic()
        if wait <= 0:
            self._send_pli()
        elif self._keyframe_handle is None:
            # coalesce: one deferred request stands for all that arrive meanwhile
            loop = asyncio.get_running_loop()
            self._keyframe_handle = loop.call_later(wait, self._deferred_pli)

    async def close(self) -> None:
        """Close this producer and all its consumers; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._cancel_keyframe_timer()
        for consumer in list(self.consumers.values()):
            await consumer.close()
        self._groups = []
        self._cache = []
        self.transport.router.active_speaker.remove(self)
        self.transport.forget_producer(self)
        self.closed_signal.emit(self)
        self.closed_signal.clear()
        if self._started:
            try:
                hooks.detach_receiver(self._transceiver.receiver)
            except Exception:  # the transport may be gone already
                logger.debug("detach of producer %s failed", self.id, exc_info=True)

    # --- consumers ----------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers[consumer.id] = consumer

    def remove_consumer(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.id, None)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the groups of consumers packets go to."""
        active = [c for c in self.consumers.values() if c.forwarding]
        self._groups = [active[i : i + FANOUT_GROUP] for i in range(0, len(active), FANOUT_GROUP)]

    def cached(self, seq: int) -> RtpPacketView | None:
        entry = self._cached_entry(seq)
        return RtpPacketView(*entry) if entry is not None else None

    def _cached_entry(self, seq: int) -> CachedPacket | None:
        if not self._cache:
            return None
        entry = self._cache[seq % CACHE_SIZE]
        return entry if entry is not None and entry[0] == seq else None

    # --- from aiortc (see aiortc_hooks.attach_receiver) --------------------------------

    def _on_start(self, params: hooks.StreamParams) -> None:
        self._started = True
        self._pt = params.payload_type
        self._rtx_pt = params.rtx_payload_type
        if params.ssrc is not None:
            self.ssrc = params.ssrc
        self.rtx_ssrc = params.rtx_ssrc
        if self._keyframe_pending:
            self.request_keyframe()

    def _on_rtp(self, packet: Any, arrival_ms: int) -> None:
        if self.closed:
            return
        seq = packet.sequence_number
        payload = packet.payload
        if packet.payload_type != self._pt:
            if packet.payload_type != self._rtx_pt or len(payload) < 2:
                self.packets_dropped += 1
                return
            # RTX (RFC 4588): the original sequence number, then the original payload
            seq = struct.unpack_from("!H", payload)[0]
            payload = payload[2:]
        elif packet.ssrc != self.ssrc:
            if self.ssrc is not None:
                self.packets_dropped += 1  # unknown SSRC on our payload type
                return
            self.ssrc = packet.ssrc
        self._receive(packet, seq, payload, arrival_ms)

    def _receive(self, packet: Any, seq: int, payload: bytes, arrival_ms: int) -> None:
        if self._nacks is not None:
            if self._cached_entry(seq) is not None:
                return  # a duplicate (a retransmission we no longer need)
            missing = self._nacks.add(seq)
            if missing:
                self._send_nack(missing)
        newest = self._stats.add(seq, packet.timestamp, len(payload), arrival_ms / 1000.0)
        if newest:
            self.last_seq, self.last_ts, self.last_time = seq, packet.timestamp, time.monotonic()
        level = packet.extensions.audio_level
        fields = (
            seq,
            packet.timestamp,
            packet.marker,
            payload,
            packet.padding_size,
            abs_send_time_now(),
            level,
            self.kind == "video" and self._is_keyframe(payload),
        )
        view = RtpPacketView(*fields)
        if self._nacks is not None:
            self._cache[seq % CACHE_SIZE] = fields
        if self.paused:
            return
        if level is not None:
            self.transport.router.active_speaker.feed(self, level[1])
        if self._keyframe_pending:
            if view.keyframe:
                self._keyframe_pending = False
            else:
                self.request_keyframe()  # the first request could not be sent
        self.forwarded += 1
        self.forwarded_bytes += len(payload)
        # a group's copies are protected first, then sent: the first viewers' copies leave
        # after FANOUT_GROUP protects at most, and Python and libsrtp are not cooled by the
        # kernel's send path between copies
        for group in self._groups:
            forward_group(view, group)

    def _on_rtcp(self, packet: Any) -> None:
        if isinstance(packet, hooks.RtcpSrPacket) and packet.ssrc == self.ssrc:
            info = packet.sender_info
            self.sr_ntp, self.sr_rtp = info.ntp_timestamp, info.rtp_timestamp
            self.sr_time = time.monotonic()
            self._stats.on_sender_report(info.ntp_timestamp)

    # --- RTCP to the publisher ----------------------------------------------------------

    def report_block(self) -> Any | None:
        """This stream's block for the SFU's receiver report to the publisher."""
        if self.ssrc is None or self._stats.base_seq is None:
            return None
        stats = self._stats
        return hooks.RtcpReceiverInfo(
            ssrc=self.ssrc,
            fraction_lost=stats.fraction_lost(),
            packets_lost=min(stats.packets_lost, (1 << 23) - 1),
            highest_sequence=stats.extended_max & 0xFFFFFFFF,
            jitter=stats.jitter,
            lsr=stats.lsr,
            dlsr=stats.dlsr(),
        )

    def remb_bitrate(self) -> int:
        """The lowest fresh bandwidth estimate among consumers (what every viewer can take).

        Without any, REMB_CEILING: a browser that hears nothing stays at its start rate.
        """
        now = time.monotonic()
        rates = [
            c.remb_bps
            for c in self.consumers.values()
            if c.remb_bps and now - c.remb_time < REMB_MAX_AGE
        ]
        return min([*rates, REMB_CEILING])

    def _send_nack(self, missing: list[int]) -> None:
        if self.ssrc is None:
            return
        packet = hooks.RtcpRtpfbPacket(
            fmt=hooks.RTCP_RTPFB_NACK, ssrc=self.transport.rtcp_ssrc, media_ssrc=self.ssrc
        )
        packet.lost = sorted(missing)
        if self.transport.sink.send_rtcp(bytes(packet)):
            self.nacks_sent += 1

    def _send_pli(self) -> None:
        self._keyframe_last = time.monotonic()
        if self.ssrc is None or not self._started:
            self._keyframe_pending = True
            return
        packet = hooks.RtcpPsfbPacket(
            fmt=hooks.RTCP_PSFB_PLI, ssrc=self.transport.rtcp_ssrc, media_ssrc=self.ssrc
        )
        if self.transport.sink.send_rtcp(bytes(packet)):
            self.keyframe_requests_sent += 1
            self._keyframe_pending = False
        else:
            self._keyframe_pending = True

    def _deferred_pli(self) -> None:
        self._keyframe_handle = None
        if not self.closed:
            self._send_pli()

    def _cancel_keyframe_timer(self) -> None:
        if self._keyframe_handle is not None:
            self._keyframe_handle.cancel()
            self._keyframe_handle = None

    def _check_open(self) -> None:
        if self.closed:
            raise ClosedError(f"producer {self.id} is closed")

    def stats(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mime_type": self.mime_type,
            "mid": self.mid,
            "paused": self.paused,
            "packets_received": self._stats.packets_received,
            "bytes_received": self._stats.bytes_received,
            "packets_lost": self._stats.packets_lost,
            "nacks_sent": self.nacks_sent,
            "keyframe_requests_sent": self.keyframe_requests_sent,
            "packets_dropped": self.packets_dropped,
            "consumers": len(self.consumers),
        }
