"""One participant's WebRTC connection to the SFU: its producers and consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from . import aiortc_hooks as hooks
from . import header_extensions
from .consumer import Consumer, sender_report_compounds
from .errors import (
    ClosedError,
    GlareError,
    IncompatibleCodecError,
    NegotiationError,
    NoUsableCodecError,
)
from .producer import Producer
from .signal import Signal

if TYPE_CHECKING:
    from .router import Router

logger = logging.getLogger(__name__)

SENDING = ("sendonly", "sendrecv")
CONNECT_TIMEOUT = 30.0  # seconds from the first negotiation to a connected peer


class Transport:
    """Wraps one aiortc RTCPeerConnection to one participant (see sfu/README.md)."""

    def __init__(self, router: Router, peer_id: str) -> None:
        self.id = uuid.uuid4().hex
        self.router = router
        self.peer_id = peer_id
        self.closed = False
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self.producer_added: Signal[Producer] = Signal("transport.producer_added")
        self.negotiation_needed: Signal[Transport] = Signal("transport.negotiation_needed")
        self.closed_signal: Signal[Transport] = Signal("transport.closed")
        self.sink = hooks.RtpSink()
        self.rtcp_ssrc = random.getrandbits(32)
        # codecs the client can receive, per kind; a kind not in here is not known yet
        self.receive_codecs: dict[str, set[str]] = {}
        self._config = router.config
        self._pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self._config.ice_servers),
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )
        hooks.use_shared_certificate(self._pc)
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._lock = asyncio.Lock()
        self._by_mid: dict[str, Producer] = {}
        self._pending: list[Consumer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._connect_timer: asyncio.TimerHandle | None = None
        # header-extension ids of this BUNDLE session, by URI (the client's, once it offered)
        self._extension_ids: dict[str, int] = {}

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    @property
    def signaling_state(self) -> str:
        return str(self._pc.signalingState)

    # --- negotiation --------------------------------------------------------------------

    async def handle_offer(self, sdp: str) -> str:
        """Apply a client's offer (it publishes or renegotiates); returns the SFU's answer."""
        async with self._lock:
            self._check_open()
            if self._pc.signalingState == "have-local-offer":
                raise GlareError("the SFU's offer is outstanding: roll back and answer it")
            description = self._parse(sdp)
            self._check_offer(description)
            self._learn_receive_codecs(description)
            self._extension_ids.update(header_extensions.ids_in(sdp))
            await self._set_remote(sdp, "offer")
            hooks.answer_as_dtls_server(self._pc, description)
            added = self._sync_producers(description)
            answer = await self._pc.createAnswer()
            await self._set_local(answer)
            for producer in added:
                self.producer_added.emit(producer)
                self.router.on_producer_added(producer)
            return str(self._pc.localDescription.sdp)

    async def create_offer(self) -> str:
        """An offer carrying every consumer added since the last negotiation."""
        async with self._lock:
            self._check_open()
            if self._pc.signalingState != "stable":
                raise NegotiationError(f"cannot offer in state {self._pc.signalingState}")
            for consumer in self._pending:
                if not consumer.closed:
                    consumer.attach(self._add_consumer_transceiver(consumer))
            self._pending = []
            offer = await self._pc.createOffer()
            # aiortc writes its own extension ids; the client's must win (see the module)
            sdp, self._extension_ids = header_extensions.remap(offer.sdp, self._extension_ids)
            hooks.renumber_header_extensions(self._pc, self._extension_ids)
            await self._set_local(RTCSessionDescription(sdp=sdp, type="offer"))
            for consumer in self.consumers.values():
                if consumer.transceiver is not None:
                    consumer.mid = consumer.transceiver.mid
            return str(self._pc.localDescription.sdp)

    async def handle_answer(self, sdp: str) -> None:
        """Apply the client's answer to the SFU's offer."""
        async with self._lock:
            self._check_open()
            if self._pc.signalingState != "have-local-offer":
                raise NegotiationError("no SFU offer is outstanding")
            self._parse(sdp)
            await self._set_remote(sdp, "answer")
            for consumer in list(self.consumers.values()):
                direction = getattr(consumer.transceiver, "currentDirection", "sendonly")
                if consumer.transceiver is not None and direction not in SENDING:
                    logger.info("client rejected consumer %s (%s)", consumer.id, direction)
                    await consumer.close()

    async def add_ice_candidate(self, candidate: str | None, sdp_mid: str | None) -> None:
        """A trickled candidate from the client (`candidate:...` line; None ends them)."""
        self._check_open()
        if candidate is None:
            await self._pc.addIceCandidate(None)
            return
        try:
            parsed = candidate_from_sdp(candidate.removeprefix("candidate:"))
        except (ValueError, IndexError, AssertionError) as exc:  # aiortc checks with assert
            raise NegotiationError(f"bad ICE candidate {candidate!r}") from exc
        parsed.sdpMid = sdp_mid
        try:
            await self._pc.addIceCandidate(parsed)
        except (ValueError, TypeError, AssertionError) as exc:
            # aiortc and aioice check some fields only with assert
            raise NegotiationError(f"bad ICE candidate {candidate!r}: {exc}") from exc

    def set_receive_codecs(self, mime_types: list[str]) -> None:
        """The codecs the client can receive, e.g. from RTCRtpReceiver.getCapabilities()."""
        self.receive_codecs = {}
        for mime in mime_types:
            self.receive_codecs.setdefault(mime.split("/")[0].lower(), set()).add(mime.lower())

    # --- consumers and producers --------------------------------------------------------

    def add_consumer(self, producer: Producer, paused: bool) -> Consumer:
        self._check_open()
        if producer.closed:
            raise ClosedError(f"producer {producer.id} is closed")
        accepted = self.receive_codecs.get(producer.kind)
        if accepted is not None and producer.mime_type not in accepted:
            raise IncompatibleCodecError(
                f"{self.peer_id} cannot receive {producer.mime_type} "
                f"(it takes {', '.join(sorted(accepted)) or 'nothing'}); the SFU never transcodes"
            )
        consumer = Consumer(producer, self, paused)
        self.consumers[consumer.id] = consumer
        self._pending.append(consumer)
        producer.add_consumer(consumer)
        self.negotiation_needed.emit(self)
        return consumer

    def forget_consumer(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.id, None)
        if consumer.transceiver is not None and not self.closed:
            with contextlib.suppress(Exception):
                consumer.transceiver.direction = "inactive"
            self.negotiation_needed.emit(self)

    def close_consumer_soon(self, consumer: Consumer) -> None:
        self._spawn(consumer.close())

    def forget_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        if self._by_mid.get(producer.mid) is producer:
            del self._by_mid[producer.mid]
        self.router.on_producer_closed(producer)

    # --- RTCP ---------------------------------------------------------------------------

    def send_reports(self) -> None:
        """Receiver reports and REMB to the client as publisher, sender reports as receiver."""
        if self.closed or self._pc.connectionState != "connected":
            return
        blocks = [b for p in self.producers.values() if (b := p.report_block()) is not None]
        compound = b""
        if blocks:
            compound += bytes(hooks.RtcpRrPacket(ssrc=self.rtcp_ssrc, reports=blocks[:31]))
        for producer in self.producers.values():
            if producer.kind == "video" and producer.ssrc is not None:
                bitrate = producer.remb_bitrate()
                remb = hooks.RtcpPsfbPacket(
                    fmt=hooks.RTCP_PSFB_APP,
                    ssrc=self.rtcp_ssrc,
                    media_ssrc=0,
                    fci=hooks.pack_remb_fci(bitrate, [producer.ssrc]),
                )
                compound += bytes(remb)
        if compound:
            self.sink.send_rtcp(compound)
        now = time.monotonic()
        reports = []
        for consumer in self.consumers.values():
            report = consumer.sender_report(now)
            if report:
                reports.append((report, consumer.sdes_chunk))
        for packet in sender_report_compounds(reports):  # none for no reports
            self.sink.send_rtcp(packet)

    # --- closing ------------------------------------------------------------------------

    async def close(self) -> None:
        """Close producers, consumers and the peer connection; idempotent."""
        if self.closed:
            return
        self.closed = True
        # the peer id is free at once: a reconnecting participant may get a new transport
        self.router.on_transport_closed(self)
        for consumer in list(self.consumers.values()):
            await consumer.close()
        for producer in list(self.producers.values()):
            await producer.close()
        self._pending = []
        if self._connect_timer is not None:
            self._connect_timer.cancel()
        await self._pc.close()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self.closed_signal.emit(self)
        for signal in (self.producer_added, self.negotiation_needed, self.closed_signal):
            signal.clear()

    # --- helpers ------------------------------------------------------------------------

    def _add_consumer_transceiver(self, consumer: Consumer) -> Any:
        producer = consumer.producer
        transceiver = self._pc.addTransceiver(producer.kind, direction="sendonly")
        rtx = producer.kind == "video"
        transceiver.setCodecPreferences(hooks.codec_capabilities(producer.codec, rtx))
        return transceiver

    def _parse(self, sdp: str) -> Any:
        if not sdp.startswith("v=0"):
            raise NegotiationError("unreadable SDP: it must start with v=0")
        try:
            description = hooks.SessionDescription.parse(sdp)
        except Exception as exc:
            raise NegotiationError(f"unreadable SDP: {exc}") from exc
        if not description.media:
            raise NegotiationError("the SDP has no media section")
        return description

    def _check_offer(self, description: Any) -> None:
        # refuse before touching the connection: aiortc has no rollback
        for media in description.media:
            if media.kind not in ("audio", "video") or media.port == 0:
                continue
            common = hooks.common_codecs(media.kind, media.rtp.codecs)
            if not common:
                raise NegotiationError(f"m-line {media.rtp.muxId}: no codec in common")
            if media.direction in SENDING and not hooks.forwardable(common):
                offered = ", ".join(c.mimeType for c in media.rtp.codecs) or "none"
                raise NoUsableCodecError(
                    f"m-line {media.rtp.muxId} sends {offered}; the SFU forwards only "
                    "VP8, H.264 (packetization-mode 1) and Opus"
                )

    def _learn_receive_codecs(self, description: Any) -> None:
        for media in description.media:
            if media.kind in ("audio", "video") and media.port != 0:
                codecs = hooks.forwardable(hooks.common_codecs(media.kind, media.rtp.codecs))
                known = self.receive_codecs.setdefault(media.kind, set())
                known.update(c.mimeType.lower() for c in codecs)

    def _sync_producers(self, description: Any) -> list[Producer]:
        media_by_mid = {m.rtp.muxId: m for m in description.media}
        consumer_transceivers = {id(c.transceiver) for c in self.consumers.values()}
        added = []
        for transceiver in self._pc.getTransceivers():
            if id(transceiver) in consumer_transceivers or transceiver.mid is None:
                continue
            media = media_by_mid.get(transceiver.mid)
            sending = media is not None and media.port != 0 and media.direction in SENDING
            existing = self._by_mid.get(transceiver.mid)
            if sending and existing is None:
                added.append(self._create_producer(transceiver, description, media))
            elif not sending and existing is not None:
                self._spawn(existing.close())
        return added

    def _create_producer(self, transceiver: Any, description: Any, media: Any) -> Producer:
        codec = hooks.restrict_to_one_codec(transceiver)
        assert codec is not None  # _check_offer made sure of it
        track_id = description.webrtc_track_id(media)
        producer = Producer(self, transceiver, codec, track_id)
        self.producers[producer.id] = producer
        self._by_mid[producer.mid] = producer
        return producer

    async def _set_remote(self, sdp: str, kind: str) -> None:
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:
            raise NegotiationError(f"cannot apply the client's {kind}: {exc}") from exc
        self._bind_sink()

    async def _set_local(self, description: RTCSessionDescription) -> None:
        hooks.use_ice_addresses(self._pc, self._config)
        await self._pc.setLocalDescription(description)
        self._bind_sink()
        if self._connect_timer is None and self._pc.connectionState != "connected":
            # a peer that vanishes while connecting would otherwise linger forever
            loop = asyncio.get_running_loop()
            self._connect_timer = loop.call_later(CONNECT_TIMEOUT, self._on_connect_timeout)

    def _on_connect_timeout(self) -> None:
        if not self.closed and self._pc.connectionState != "connected":
            logger.info("peer %s did not connect in %s s: closing", self.peer_id, CONNECT_TIMEOUT)
            self._spawn(self.close())

    def _bind_sink(self) -> None:
        dtls = hooks.dtls_transport(self._pc)
        if dtls is not None:
            self.sink.bind(dtls)

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state == "connected":
            if self._connect_timer is not None:
                # its work is done; the cancelled handle stays, so it is never armed again
                self._connect_timer.cancel()
            hooks.patient_consent(self._pc)
            hooks.receive_rtp_directly(self._pc)
        if state in ("failed", "closed") and not self.closed:
            logger.info("peer %s vanished (%s): closing its transport", self.peer_id, state)
            self._spawn(self.close())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_open(self) -> None:
        if self.closed:
            raise ClosedError(f"transport of {self.peer_id} is closed")

    def stats(self) -> dict[str, Any]:
        return {
            "connection_state": self.connection_state,
            "send_drops": self.sink.dropped,
            "producers": {p.id: p.stats() for p in self.producers.values()},
            "consumers": {c.id: c.stats() for c in self.consumers.values()},
        }
