"""Which packets of an incoming video stream are missing, so the SFU can NACK them."""

from __future__ import annotations

MAX_MISSING = 256  # a gap larger than this is a restart, not loss worth repairing
MAX_AGE = 1000  # forget a missing packet this many sequence numbers later


class NackTracker:
    """Tracks gaps in the sequence numbers of one stream."""

    def __init__(self) -> None:
        self.max_seq: int | None = None
        self.missing: set[int] = set()

    def add(self, seq: int) -> list[int]:
        """Record a packet; returns the sequence numbers newly found missing."""
        if self.max_seq is None:
            self.max_seq = seq
            return []
        delta = (seq - self.max_seq) & 0xFFFF
        if delta == 0:
            return []
        if delta >= 0x8000:  # older packet: a retransmission or a reordering
            self.missing.discard(seq)
            return []
        new = []
        if delta > MAX_MISSING:
            self.missing.clear()  # the stream restarted: old gaps are not worth repairing
        elif delta > 1:
            new = [(self.max_seq + i) & 0xFFFF for i in range(1, delta)]
            self.missing.update(new)
        self.max_seq = seq
        if self.missing:
            self._forget_old()
        return new

    def _forget_old(self) -> None:
        assert self.max_seq is not None
        top = self.max_seq
        self.missing = {s for s in self.missing if (top - s) & 0xFFFF < MAX_AGE}
