"""One live consultation's media: its transports, producers and speaker detection."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from . import aiortc_hooks as hooks
from . import ticker
from .active_speaker_observer import ActiveSpeakerObserver
from .config import SfuConfig
from .consumer import Consumer
from .errors import ClosedError, DuplicateError
from .producer import Producer
from .signal import Signal
from .transport import Transport

logger = logging.getLogger(__name__)

RTCP_INTERVAL = 1.0  # seconds between the SFU's receiver / sender reports


class Router:
    """One per live consultation; create transports, consume producers, close it all."""

    def __init__(self, config: SfuConfig | None = None, router_id: str | None = None) -> None:
        hooks.check_versions()
        self.id = router_id or uuid.uuid4().hex
        self.config = config or SfuConfig()
        self.closed = False
        self.active_speaker = ActiveSpeakerObserver()
        self.producer_added: Signal[Producer] = Signal("router.producer_added")
        self.producer_closed: Signal[Producer] = Signal("router.producer_closed")
        self._transports: dict[str, Transport] = {}
        self._producers: dict[str, Producer] = {}
        self._reporting = False
        self._round: list[list[Transport]] = []  # the peers each tick of this round reports to
        self._tick = 0

    @property
    def transports(self) -> Mapping[str, Transport]:
        return self._transports

    @property
    def producers(self) -> Mapping[str, Producer]:
        return self._producers

    async def create_transport(self, peer_id: str) -> Transport:
        """A new peer connection for one participant (no I/O until negotiation)."""
        self._check_open()
        if peer_id in self._transports:
            raise DuplicateError(f"peer {peer_id!r} already has a transport")
        transport = Transport(self, peer_id)
        self._transports[peer_id] = transport
        self._start_tasks()
        return transport

    async def consume(
        self, producer: Producer, transport: Transport, *, paused: bool = False
    ) -> Consumer:
        """Send `producer` to `transport`; takes effect at transport.create_offer()."""
        self._check_open()
        if producer.transport.router is not self or transport.router is not self:
            raise ClosedError("producer and transport must belong to this router")
        return transport.add_consumer(producer, paused)

    async def close(self) -> None:
        """Close every transport (and so every producer and consumer); idempotent."""
        if self.closed:
            return
        self.closed = True
        ticker.ticker().discard(self._report_tick)
        await asyncio.gather(*(t.close() for t in list(self._transports.values())))
        await self.active_speaker.close()
        self.producer_added.clear()
        self.producer_closed.clear()

    def stats(self) -> dict[str, Any]:
        """A JSON-serialisable view of every transport, producer and consumer."""
        return {
            "router_id": self.id,
            "closed": self.closed,
            "transports": {peer: t.stats() for peer, t in self._transports.items()},
        }

    # --- called by transports -----------------------------------------------------------

    def on_producer_added(self, producer: Producer) -> None:
        self._producers[producer.id] = producer
        self.producer_added.emit(producer)

    def on_producer_closed(self, producer: Producer) -> None:
        if self._producers.pop(producer.id, None) is not None:
            self.producer_closed.emit(producer)

    def on_transport_closed(self, transport: Transport) -> None:
        if self._transports.get(transport.peer_id) is transport:
            del self._transports[transport.peer_id]

    # --- helpers ------------------------------------------------------------------------

    def _start_tasks(self) -> None:
        if not self._reporting:
            self._reporting = True
            ticker.ticker().add(self._report_tick)  # runs in the media's wake-ups (sfu.ticker)
        self.active_speaker.start()

    def _report_tick(self) -> None:
        # each peer's reports once per RTCP_INTERVAL, the peers spread over its ticks: a
        # hearing's hundred peers at once would hold every packet back for several ms
        if self._tick >= len(self._round):
            transports = list(self._transports.values())
            count = len(transports)
            ticks = max(1, round(RTCP_INTERVAL / ticker.PERIOD))
            self._round = [
                transports[t * count // ticks : (t + 1) * count // ticks] for t in range(ticks)
            ]
            self._tick = 0
        transports = self._round[self._tick]
        self._tick += 1
        for transport in transports:
            try:
                transport.send_reports()
            except Exception:
                logger.exception("RTCP reports to %s failed", transport.peer_id)

    def _check_open(self) -> None:
        if self.closed:
            raise ClosedError(f"router {self.id} is closed")
