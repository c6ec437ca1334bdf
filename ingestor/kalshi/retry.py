"""Jittered exponential backoff and the retry rule for Kalshi REST calls: pure, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ingestor.kalshi.errors import (
    RETRYABLE_STATUSES,
    KalshiAPIError,
    KalshiError,
    KalshiTransportError,
)


@dataclass
class Backoff:
    """Delay before attempt n+1: base * factor**(n-1), capped, with `jitter` fraction randomised."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("backoff needs base >= 0, cap >= 0, factor >= 1 and 0 <= jitter <= 1")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay after failed attempt `attempt` (1-based)."""
        exponent = max(0, attempt - 1)
        # avoid float overflow on long outages
        if exponent > 64:
            return self.cap
        return min(self.cap, self.base * self.factor**exponent)

    def delay(self, attempt: int) -> float:
        """Jittered delay in [ceiling*(1-jitter), ceiling]."""
        ceiling = self.ceiling(attempt)
        return ceiling * (1 - self.jitter * self.rng.random())


@dataclass
class RetryPolicy:
    """Which failures are retried, how often, and how long to wait between attempts."""

    max_attempts: int = 6
    backoff: Backoff = field(default_factory=Backoff)
    max_retry_after: float = 120.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def retryable(self, error: KalshiError) -> bool:
        """True for 429, 5xx, timeouts and connection errors."""
        if isinstance(error, KalshiAPIError):
            return error.status in self.retry_statuses
        return isinstance(error, KalshiTransportError)

    def should_retry(self, error: KalshiError, attempt: int) -> bool:
        """Retry `error` raised by attempt number `attempt` (1-based)?"""
        return attempt < self.max_attempts and self.retryable(error)

    def delay(self, error: KalshiError, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt`; a Retry-After header wins."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(self.max_retry_after, retry_after)
        return self.backoff.delay(attempt)
