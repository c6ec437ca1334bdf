"""The backfill cursor (last_min_close_ts) as pure rules over close-time windows.

Markets are grouped by close time into windows [b0, b1), [b1, b2), ... from the cursor b0 to
the pass's "now"; interior boundaries fall on multiples of the window width. The cursor moves
to the start of the first window that still has a pending or failed market (to "now" when
every window is done), so a crash or a failure resumes at or before the first market that
was not done and never skips one. Markets that close at or after "now", or have no close
time, are the open tail: fetched every pass, never holding the cursor back.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

DEFAULT_WIDTH = timedelta(hours=1)


def default_cursor(now: datetime, start_days: float) -> datetime:
    """The cursor of a first pass: BACKFILL_START_DAYS before now."""
    return now - timedelta(days=start_days)


def boundaries(cursor: datetime, now: datetime, width: timedelta = DEFAULT_WIDTH) -> list[datetime]:
    """b0 = cursor < b1 < ... < bn = now (just [cursor] when now <= cursor)."""
    if width <= timedelta(0):
        raise ValueError(f"window width must be positive, got {width}")
    out = [cursor]
    if now <= cursor:
        return out
    step = width.total_seconds()
    k = int(cursor.timestamp() // step) + 1
    while True:
        b = datetime.fromtimestamp(k * step, UTC)
        if b >= now:
            break
        out.append(b)
        k += 1
    out.append(now)
    return out


class WindowTracker:
    """Tracks which markets of each window are done; `cursor` is safe to persist at any time."""

    def __init__(
        self,
        cursor: datetime,
        now: datetime,
        closes: Mapping[str, datetime | None],
        width: timedelta = DEFAULT_WIDTH,
    ) -> None:
        self.start = cursor
        self.now = now
        self.bounds = boundaries(cursor, now, width)
        windows = max(len(self.bounds) - 1, 0)
        self.pending = [0] * windows
        self.failed = [False] * windows
        self.window_of: dict[str, int | None] = {}
        self.closes = dict(closes)
        for ticker, close in closes.items():
            index = self.index(close)
            self.window_of[ticker] = index
            if index is not None:
                self.pending[index] += 1
        self._first_open = 0
        self._advance()

    def index(self, close: datetime | None) -> int | None:
        """The window holding a close time; None for the open tail."""
        if close is None or close >= self.now or not self.pending:
            return None
        if close < self.start:
            return 0
        return min(bisect_right(self.bounds, close) - 1, len(self.pending) - 1)

    def order(self) -> list[str]:
        """Markets in the order to process them: by close time, the open tail last."""
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(self.window_of, key=lambda t: (self.closes[t] or far, t))

    def _advance(self) -> None:
        i = self._first_open
        while i < len(self.pending) and self.pending[i] == 0 and not self.failed[i]:
            i += 1
        self._first_open = i

    def finish(self, ticker: str, ok: bool) -> None:
        """Record that a market is done (ok) or failed; unknown tickers raise KeyError."""
        index = self.window_of[ticker]
        if index is None:
            return
        self.pending[index] -= 1
        if not ok:
            self.failed[index] = True
        self._advance()

    @property
    def cursor(self) -> datetime:
        """Start of the first window not fully done, or `now` when all are."""
        return self.bounds[self._first_open]

    @property
    def held_back(self) -> bool:
        """True when a failed market keeps the cursor from reaching `now`."""
        return any(self.failed)
