"""Client-side token bucket on trio's clock, shared by every Kalshi REST call in a process."""

from __future__ import annotations

import logging
import math

import trio

log = logging.getLogger(__name__)

# Kalshi Basic tier: 200 read tokens/s at 10 tokens a request, bucket holds 2 s of budget.
DEFAULT_RATE = 20.0
DEFAULT_BURST = 40.0

# Float refill arithmetic can leave 0.999999... tokens; sleeping for the rest would not advance.
_EPSILON = 1e-9
_MIN_SLEEP = 1e-6


class TokenBucket:
    """Token bucket (`rate` tokens/s, at most `burst`); FIFO-fair, cancellation-safe.

    `reserve` tokens of the burst are never spent: the server's bucket sees each request a
    little after we send it, and when its bucket was full it refills later than ours. Keeping
    one token back absorbs up to 1/rate seconds of latency jitter without costing throughput.
    """

    def __init__(
        self, rate: float = DEFAULT_RATE, burst: float | None = None, reserve: float = 0.0
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a positive number of requests per second, got {rate}")
        burst = 2 * rate if burst is None else burst
        if reserve < 0 or burst - reserve < 1:
            raise ValueError(f"burst - reserve must be >= 1, got burst={burst} reserve={reserve}")
        self.rate = float(rate)
        self.burst = float(burst)
        self.reserve = float(reserve)
        self.capacity = self.burst - self.reserve
        self._tokens = self.capacity
        self._stamp: float | None = None
        self._run: object | None = None
        self._lock: trio.Lock | None = None
        self.acquired = 0
        self.waited = 0.0

    def _bind(self) -> trio.Lock:
        # A bucket may outlive one trio.run (module default, tests): start afresh in a new run.
        run = trio.lowlevel.current_root_task()
        if run is not self._run or self._lock is None:
            self._run = run
            self._lock = trio.Lock()
            self._tokens = self.capacity
            self._stamp = trio.current_time()
        return self._lock

    def _refill(self) -> None:
        now = trio.current_time()
        assert self._stamp is not None
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    @property
    def tokens(self) -> float:
        """Tokens available now (only meaningful inside trio)."""
        self._bind()
        self._refill()
        return self._tokens

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait until `cost` tokens are available and take them."""
        if cost > self.capacity:
            raise ValueError(f"cost {cost} exceeds the usable bucket size {self.capacity}")
        lock = self._bind()
        async with lock:
            start = trio.current_time()
            while True:
                self._refill()
                if self._tokens >= cost - _EPSILON:
                    self._tokens = max(0.0, self._tokens - cost)
                    self.acquired += 1
                    self.waited += trio.current_time() - start
                    return
                await trio.sleep(max((cost - self._tokens) / self.rate, _MIN_SLEEP))

    def drain(self) -> None:
        """Empty the bucket (after the server said 429), so every caller slows down at once."""
        self._bind()
        self._refill()
        if self._tokens > 0:
            log.info("rate limiter drained tokens=%.1f", self._tokens)
        self._tokens = min(self._tokens, 0.0)


_default: TokenBucket | None = None


def server_matched(rate: float, burst: float | None = None) -> TokenBucket:
    """A bucket for a server limit of `rate`/`burst`, keeping one token back when it can."""
    burst = 2 * rate if burst is None else burst
    return TokenBucket(rate, burst, reserve=1.0 if burst >= 2 else 0.0)


def default_limiter() -> TokenBucket:
    """The process-wide bucket (Basic tier unless `configure_default_limiter` ran first)."""
    global _default
    if _default is None:
        _default = server_matched(DEFAULT_RATE, DEFAULT_BURST)
    return _default


def configure_default_limiter(rate: float, burst: float | None = None) -> TokenBucket:
    """Replace the process-wide bucket, e.g. from KALSHI_REST_RATE_PER_SEC / _BURST at start."""
    global _default
    _default = server_matched(rate, burst)
    return _default
