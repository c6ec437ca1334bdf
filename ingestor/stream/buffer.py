"""The bounded buffer between the WS receive loop and the database writer.

Pure (no I/O, no clock of its own). It holds at most `maxsize` items counting the batch being
written, drops duplicates within a batch, keeps only the newest quote per market, and when it
is full it drops new items and accounts for every one of them: count, markets and window,
handed to the writer as a 'dropped' gap record so nothing is lost silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from ingestor.db.ticks import QuoteRow
from ingestor.db.ws_gaps import DROPPED, GapRecord
from ingestor.kalshi.ws_protocol import Ticker
from ingestor.stream.rows import LifecycleRow, TickRow, quote_row, us_to_datetime

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """Everything one database transaction writes."""

    ticks: list[TickRow] = field(default_factory=list)
    quotes: list[QuoteRow] = field(default_factory=list)
    lifecycle: list[LifecycleRow] = field(default_factory=list)
    gaps: list[GapRecord] = field(default_factory=list)
    max_ts_us: int | None = None
    max_received_at: datetime | None = None

    @property
    def items(self) -> int:
        """Items that count against the buffer bound (ticks and lifecycle rows)."""
        return len(self.ticks) + len(self.lifecycle)

    def __bool__(self) -> bool:
        return bool(self.ticks or self.lifecycle or self.gaps or self.quotes)


@dataclass(slots=True)
class _DropEpisode:
    started_at: datetime
    ended_at: datetime
    ticks: int = 0
    lifecycle: int = 0
    markets: set[str] = field(default_factory=set)

    def record(self, maxsize: int, *, closed: bool) -> GapRecord:
        return GapRecord(
            DROPPED, self.started_at, self.ended_at if closed else None,
            tuple(sorted(self.markets)), self.ticks,
            {"lifecycle_dropped": self.lifecycle, "ws_queue_maxsize": maxsize,
             "last_drop_at": self.ended_at.isoformat()},
        )


@dataclass(slots=True)
class BufferCounters:
    """Running totals since start."""

    ticks: int = 0
    lifecycle: int = 0
    duplicates: int = 0
    dropped_ticks: int = 0
    dropped_lifecycle: int = 0


class StreamBuffer:
    """Pending ticks, quotes, lifecycle rows and gap records, bounded by `maxsize` items."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.counters = BufferCounters()
        self.inflight = 0
        self.oldest: float | None = None
        self._ticks: list[TickRow] = []
        self._seen: set[int] = set()
        self._quotes: dict[str, tuple[int, int, Ticker]] = {}
        self._lifecycle: list[LifecycleRow] = []
        self._lifecycle_seen: set[str] = set()
        self._gaps: dict[tuple[str, datetime], GapRecord] = {}
        self._max_ts_us: int | None = None
        self._max_received_us: int | None = None
        self._episode: _DropEpisode | None = None
        self._dropped_since_take = False

    # ---- state ----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Ticks and lifecycle rows waiting for the next batch."""
        return len(self._ticks) + len(self._lifecycle)

    @property
    def has_work(self) -> bool:
        """True when a flush would write something."""
        return bool(self._ticks or self._lifecycle or self._gaps or self._episode is not None)

    def _full(self) -> bool:
        return len(self._ticks) + len(self._lifecycle) + self.inflight >= self.maxsize

    def _touch(self, now: float) -> None:
        if self.oldest is None:
            self.oldest = now

    # ---- adding ---------------------------------------------------------------------------

    def add_tick(self, row: TickRow, message: Ticker, now: float) -> bool:
        """Queue a tick (and its message, for the market's newest quote); False when it
        duplicates a pending one or had to be dropped."""
        fp = row.fingerprint
        if fp in self._seen:
            self.counters.duplicates += 1
            return False
        if len(self._ticks) + len(self._lifecycle) + self.inflight >= self.maxsize:
            self.counters.dropped_ticks += 1
            self._drop(row.ticker, row.received_at, now, lifecycle=False)
            return False
        self._seen.add(fp)
        self._ticks.append(row)
        self.counters.ticks += 1
        ts_us = row.ts_us
        held = self._quotes.get(row.ticker)
        if held is None or ts_us >= held[0]:
            self._quotes[row.ticker] = (ts_us, row.received_us, message)
        if self._max_ts_us is None or ts_us > self._max_ts_us:
            self._max_ts_us = ts_us
        if self._max_received_us is None or row.received_us > self._max_received_us:
            self._max_received_us = row.received_us
        if self.oldest is None:
            self.oldest = now
        return True

    def add_lifecycle(self, row: LifecycleRow, now: float) -> bool:
        """Queue a lifecycle row; False when it duplicates a pending one or had to be dropped."""
        if row.fingerprint in self._lifecycle_seen:
            self.counters.duplicates += 1
            return False
        if self._full():
            self.counters.dropped_lifecycle += 1
            key = row.market_ticker or row.event_ticker or ""
            self._drop(key, row.received_at, now, lifecycle=True)
            return False
        self._lifecycle_seen.add(row.fingerprint)
        self._lifecycle.append(row)
        self.counters.lifecycle += 1
        self._touch(now)
        return True

    def add_gap(self, gap: GapRecord, now: float) -> None:
        """Queue a gap record; a later record with the same reason and start replaces it."""
        self._gaps[(gap.reason, gap.started_at)] = gap
        self._touch(now)

    def _drop(self, market: str, at: datetime, now: float, *, lifecycle: bool) -> None:
        self._touch(now)
        ep = self._episode
        if ep is None:
            ep = self._episode = _DropEpisode(started_at=at, ended_at=at)
            log.warning(
                "ws buffer full, dropping new items until the database catches up "
                "maxsize=%d inflight=%d pending=%d (recorded in ws_gaps as 'dropped')",
                self.maxsize, self.inflight, self.pending,
            )
        if lifecycle:
            ep.lifecycle += 1
        else:
            ep.ticks += 1
        if market:
            ep.markets.add(market)
        if at > ep.ended_at:
            ep.ended_at = at
        self._dropped_since_take = True

    # ---- taking ---------------------------------------------------------------------------

    @property
    def quotes_pending(self) -> int:
        """Markets whose newest quote is not in a batch yet."""
        return len(self._quotes)

    def take(self, *, quotes: bool = True, now: float | None = None) -> Batch:
        """Move everything pending into a batch (counted in flight until `release`); with
        quotes=False the newest quotes stay behind for a later batch. An open drop episode
        stays pending (as of `now`) so a later batch closes it."""
        ep = self._episode
        if ep is not None:
            # open while drops go on; closed (ended_at = last drop) by the first batch after
            closed = not self._dropped_since_take
            record = ep.record(self.maxsize, closed=closed)
            self._gaps[(record.reason, record.started_at)] = record
            if closed:
                log.warning(
                    "ws dropped items while the buffer was full ticks=%d lifecycle=%d markets=%d "
                    "from=%s to=%s", ep.ticks, ep.lifecycle, len(ep.markets),
                    ep.started_at.isoformat(), ep.ended_at.isoformat(),
                )
                self._episode = None
        self._dropped_since_take = False
        batch = Batch(
            ticks=self._ticks,
            quotes=[quote_row(m, ts, rec) for ts, rec, m in self._quotes.values()]
            if quotes else [],
            lifecycle=self._lifecycle,
            gaps=list(self._gaps.values()),
            max_ts_us=self._max_ts_us,
            max_received_at=(
                None if self._max_received_us is None else us_to_datetime(self._max_received_us)
            ),
        )
        self._ticks = []
        self._seen = set()
        if quotes:
            self._quotes = {}
        self._lifecycle = []
        self._lifecycle_seen = set()
        self._gaps = {}
        self._max_ts_us = None
        self._max_received_us = None
        self.oldest = now if self._episode is not None else None
        self.inflight += batch.items
        return batch

    def release(self, batch: Batch) -> None:
        """The batch is committed (or given up): its items no longer count against the bound."""
        self.inflight = max(0, self.inflight - batch.items)
