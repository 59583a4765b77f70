"""Who is speaking, from RFC 6464 audio levels in the RTP header (no decoding)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from . import ticker
from .signal import Signal
from .speaking_event import SpeakingEvent

if TYPE_CHECKING:
    from .producer import Producer

INTERVAL = 0.3  # seconds between decisions
SPEAKING_LEVEL = 50  # a mean level louder than -50 dBov counts as speech
DOMINANT_AFTER = 2  # intervals a new producer must be loudest before it becomes dominant


class ActiveSpeakerObserver:
    """Turns audio levels of a router's audio producers into speaking / dominant events."""

    def __init__(self) -> None:
        self.dominant_speaker_changed: Signal[Producer | None] = Signal("dominant_speaker")
        self.speaking_changed: Signal[SpeakingEvent] = Signal("speaking_changed")
        self.dominant: Producer | None = None
        self.speaking: set[Producer] = set()
        self._sums: dict[Producer, list[int]] = {}
        self._candidate: Producer | None = None
        self._candidate_count = 0
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        if self._task is None and not self.closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def feed(self, producer: Producer, level: int) -> None:
        """One packet's level: 0..127, i.e. -dBov (RFC 6464)."""
        acc = self._sums.get(producer)
        if acc is None:
            self._sums[producer] = [level, 1]
        else:
            acc[0] += level
            acc[1] += 1

    def remove(self, producer: Producer) -> None:
        """Forget a producer that closed or was paused (it is no longer speaking)."""
        self._sums.pop(producer, None)
        if producer in self.speaking:
            self.speaking.discard(producer)
            self.speaking_changed.emit(SpeakingEvent(producer, False, -127.0))
        if self._candidate is producer:
            self._candidate, self._candidate_count = None, 0
        if self.dominant is producer:
            self.dominant = None
            self.dominant_speaker_changed.emit(None)

    async def close(self) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.dominant_speaker_changed.clear()
        self.speaking_changed.clear()

    async def _run(self) -> None:
        while True:
            await ticker.ticker().sleep(INTERVAL)  # in a media wake-up, not one of its own
            self.tick()

    def tick(self) -> None:
        """Decide who speaks over the interval that just ended."""
        means = {p: s / n for p, (s, n) in self._sums.items() if n}
        self._sums = {}
        for producer in list(self.speaking):
            if means.get(producer, 127.0) > SPEAKING_LEVEL:
                self.speaking.discard(producer)
                self.speaking_changed.emit(
                    SpeakingEvent(producer, False, -means.get(producer, 127.0))
                )
        for producer, mean in means.items():
            if mean <= SPEAKING_LEVEL and producer not in self.speaking:
                self.speaking.add(producer)
                self.speaking_changed.emit(SpeakingEvent(producer, True, -mean))
        self._update_dominant(means)

    def _update_dominant(self, means: dict[Producer, float]) -> None:
        loud = [(m, p.id, p) for p, m in means.items() if m <= SPEAKING_LEVEL]
        if not loud:
            self._candidate, self._candidate_count = None, 0
            return
        loudest = min(loud, key=lambda x: (x[0], x[1]))[2]
        if loudest is self.dominant:
            self._candidate, self._candidate_count = None, 0
            return
        if loudest is self._candidate:
            self._candidate_count += 1
        else:
            self._candidate, self._candidate_count = loudest, 1
        if self._candidate_count >= DOMINANT_AFTER or self.dominant is None:
            self.dominant = loudest
            self._candidate, self._candidate_count = None, 0
            self.dominant_speaker_changed.emit(loudest)
