"""Counters and receive-to-commit latency of the ws role, for logs and benchmarks."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

# Latency histogram bucket upper bounds in milliseconds (about 10% resolution).
_BOUNDS: tuple[float, ...] = tuple(
    sorted({round(1.1**i, 1) for i in range(0, 140)} | {0.5})
)


@dataclass
class LatencyHistogram:
    """Receive-to-commit latencies, bucketed; percentiles are bucket upper bounds."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(_BOUNDS) + 1))
    total: int = 0
    max_ms: float = 0.0

    def add_many(self, commit_clock: float, received_clocks: Iterable[float]) -> None:
        counts = self.counts
        bounds = _BOUNDS
        worst = self.max_ms
        n = 0
        for received in received_clocks:
            ms = (commit_clock - received) * 1000.0
            counts[bisect.bisect_left(bounds, ms)] += 1
            if ms > worst:
                worst = ms
            n += 1
        self.total += n
        self.max_ms = worst

    def percentile(self, p: float) -> float | None:
        """The p-th percentile (0-100) in ms, or None without samples."""
        if not self.total:
            return None
        rank = max(1, round(self.total * p / 100.0))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(_BOUNDS[i], self.max_ms) if i < len(_BOUNDS) else self.max_ms
        return self.max_ms

    def reset(self) -> None:
        self.counts = [0] * (len(_BOUNDS) + 1)
        self.total = 0
        self.max_ms = 0.0


@dataclass
class StreamStats:
    """What the role did since start (buffer counters live in the buffer)."""

    ticks_received: int = 0
    lifecycle_received: int = 0
    lifecycle_other_shards: int = 0
    unusable_ticks: int = 0
    ticks_written: int = 0
    ticks_already_stored: int = 0
    ticks_rejected: int = 0
    lifecycle_written: int = 0
    lifecycle_rejected: int = 0
    batches: int = 0
    batch_errors: int = 0
    fallback_batches: int = 0
    gaps_recorded: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    window: LatencyHistogram = field(default_factory=LatencyHistogram)
