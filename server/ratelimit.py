"""Per-client-address rate limits (staff login, registration, joining with a passcode)."""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most `limit` attempts per `window` seconds from one client address."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_clients = max_clients
        self._attempts: dict[str, deque[float]] = {}

    def allow(self, address: str) -> bool:
        """Record an attempt from `address`; False (and not recorded) when over the limit."""
        now = self._clock()
        key = self.client_key(address)
        attempts = self._attempts.setdefault(key, deque())
        while attempts and attempts[0] <= now - self._window:
            attempts.popleft()
        if len(attempts) >= self._limit:
            return False
        attempts.append(now)
        if len(self._attempts) > self._max_clients:
            self._forget_idle(now)
        return True

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again (0 when it may now)."""
        attempts = self._attempts.get(self.client_key(address))
        if not attempts or len(attempts) < self._limit:
            return 0.0
        return max(attempts[0] + self._window - self._clock(), 0.0)

    @staticmethod
    def client_key(address: str) -> str:
        """IPv6 clients by their /64, since one host usually holds a whole /64."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address
        if ip.version == 6:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, v in self._attempts.items() if not v or v[-1] <= now - self._window]
        for key in idle:
            del self._attempts[key]
