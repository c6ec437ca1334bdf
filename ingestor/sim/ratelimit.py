"""Token bucket for the simulated REST API (Kalshi Basic tier: 20 requests/s, burst 40)."""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """Refills `rate` tokens/s up to `burst`; each request takes one; rate <= 0 is unlimited."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if burst < 1 and rate > 0:
            raise ValueError(f"burst={burst}: must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty (answer 429)."""
        if self.rate <= 0:
            return True
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
