"""RFC 3550 reception statistics of one incoming stream, for the SFU's receiver reports."""

from __future__ import annotations

import time


class ReceiveStats:
    """Counts, losses, extended highest sequence number and interarrival jitter."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.packets_received = 0
        self.bytes_received = 0
        self.base_seq: int | None = None
        self.max_seq = 0
        self.cycles = 0
        self.jitter_q4 = 0
        self._last_transit: int | None = None
        # snapshot at the previous report, for fraction lost
        self._expected_prior = 0
        self._received_prior = 0
        # last sender report: middle 32 bits of its NTP time, and when it arrived
        self.lsr = 0
        self.lsr_time = 0.0

    def add(self, seq: int, timestamp: int, size: int, arrival_s: float) -> bool:
        """Count one packet; True if it is newer than every packet before it."""
        self.packets_received += 1
        self.bytes_received += size
        newest = False
        if self.base_seq is None:
            self.base_seq = self.max_seq = seq
            newest = True
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                if seq < self.max_seq:
                    self.cycles += 1 << 16
                self.max_seq = seq
                newest = True
        transit = int(arrival_s * self.clock_rate) - timestamp
        if self._last_transit is not None:
            d = abs(transit - self._last_transit)
            self.jitter_q4 += d - ((self.jitter_q4 + 8) >> 4)
        self._last_transit = transit
        return newest

    @property
    def extended_max(self) -> int:
        return self.cycles | self.max_seq

    @property
    def packets_lost(self) -> int:
        if self.base_seq is None:
            return 0
        expected = self.extended_max - self.base_seq + 1
        return max(0, expected - self.packets_received)

    @property
    def jitter(self) -> int:
        return self.jitter_q4 >> 4

    def fraction_lost(self) -> int:
        """Loss since the previous call, in 1/256 units (and moves the snapshot)."""
        if self.base_seq is None:
            return 0
        expected = self.extended_max - self.base_seq + 1
        expected_interval = expected - self._expected_prior
        received_interval = self.packets_received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.packets_received
        lost = expected_interval - received_interval
        if expected_interval <= 0 or lost <= 0:
            return 0
        return min(255, (lost << 8) // expected_interval)

    def on_sender_report(self, ntp_timestamp: int) -> None:
        self.lsr = (ntp_timestamp >> 16) & 0xFFFFFFFF
        self.lsr_time = time.monotonic()

    def dlsr(self) -> int:
        if not self.lsr_time:
            return 0
        return int((time.monotonic() - self.lsr_time) * 65536) & 0xFFFFFFFF
