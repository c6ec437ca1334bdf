"""ingest_state freshness for the ws role: written at most once per interval, and only for
ticks that are committed (in the same transaction as the batch that carries them, or later).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingestor.kalshi.models import EPOCH

LAST_TICK_TS = "last_tick_ts"
LAST_WS_TICK_TS = "last_ws_tick_ts"


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """Values for last_tick_ts (exchange time) and last_ws_tick_ts (receive time)."""

    last_tick_ts: datetime
    last_ws_tick_ts: datetime


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class Freshness:
    """Tracks what is committed and what was last written to ingest_state."""

    def __init__(self, interval: float = 1.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.committed_ts: datetime | None = None
        self.committed_received: datetime | None = None
        self.written: StateUpdate | None = None
        self.last_write: float = -math.inf

    def candidate(
        self, batch_ts_us: int | None, batch_received: datetime | None
    ) -> StateUpdate | None:
        """The newest values (committed plus this batch), or None when already written."""
        batch_ts = None if batch_ts_us is None else EPOCH + timedelta(microseconds=batch_ts_us)
        ts = _later(self.committed_ts, batch_ts)
        received = _later(self.committed_received, batch_received)
        if ts is None or received is None:
            return None
        update = StateUpdate(ts, received)
        return None if update == self.written else update

    def plan(
        self, batch_ts_us: int | None, batch_received: datetime | None, now: float
    ) -> StateUpdate | None:
        """The update to write with a batch at `now`, or None (too soon or nothing new)."""
        if now < self.last_write + self.interval:  # the same sum as due_at, so they agree
            return None
        return self.candidate(batch_ts_us, batch_received)

    def committed(
        self,
        batch_ts_us: int | None,
        batch_received: datetime | None,
        written: StateUpdate | None,
        now: float,
    ) -> None:
        """Record a committed batch and the state update it carried (if any)."""
        if batch_ts_us is not None:
            self.committed_ts = _later(
                self.committed_ts, EPOCH + timedelta(microseconds=batch_ts_us)
            )
        self.committed_received = _later(self.committed_received, batch_received)
        if written is not None:
            self.written = written
            self.last_write = now

    def due_at(self) -> float | None:
        """When a state-only write is due (committed values not written yet), else None."""
        if self.candidate(None, None) is None:
            return None
        return self.last_write + self.interval
