"""Simulated time: start + speed x elapsed trio time, plus explicit jumps; or manual only."""

from __future__ import annotations

from collections.abc import Callable

import trio


class SimClock:
    """Unix seconds on the simulated exchange. Manual clocks move only through `skip`."""

    def __init__(
        self,
        start_ts: float,
        speed: float = 1.0,
        *,
        manual: bool = False,
        elapsed: Callable[[], float] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed={speed}: must be positive")
        self.start_ts = start_ts
        self.speed = speed
        self.manual = manual
        self._elapsed = elapsed or trio.current_time
        self._t0: float | None = None
        self._offset = 0.0

    def start(self) -> None:
        """Begin counting elapsed time (called when the server starts)."""
        self._t0 = self._elapsed()

    def now(self) -> float:
        """Current simulated Unix time."""
        base = self.start_ts + self._offset
        if self.manual or self._t0 is None:
            return base
        return base + self.speed * (self._elapsed() - self._t0)

    def skip(self, seconds: float) -> None:
        """Jump forward by `seconds` of simulated time."""
        if seconds < 0:
            raise ValueError("the simulated clock cannot go backwards")
        self._offset += seconds
