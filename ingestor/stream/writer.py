"""The database writer loop: flushes the buffer by size or timer, retries, never loses a batch.

A batch leaves the buffer's accounting only once it is committed. A failed write (database
down, connection lost) is retried with backoff while the receive loop keeps filling the
bounded buffer; a batch interrupted by shutdown is written again by `flush_all` (every write
is idempotent, so a batch that did commit before the interruption is harmless to repeat).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import datetime

import psycopg
import trio
from psycopg_pool import PoolTimeout

from ingestor.db.ws_gaps import REJECTED, GapRecord
from ingestor.errors import DatabaseUnavailable
from ingestor.stream.buffer import Batch, StreamBuffer
from ingestor.stream.freshness import Freshness, StateUpdate
from ingestor.stream.sink import SinkResult
from ingestor.stream.stats import StreamStats

log = logging.getLogger(__name__)

Sink = Callable[[Batch, StateUpdate | None], Awaitable[SinkResult]]

# Pause before re-planning when a due flush found nothing to write (float edge cases).
IDLE_RECHECK_SECONDS = 0.001

# Errors worth retrying: the server or the connection, not the statement.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    DatabaseUnavailable,
    PoolTimeout,
)


class StreamWriter:
    """Writes the buffer in batches: by size (WS_DB_BATCH_SIZE) or timer (WS_DB_FLUSH_SECONDS).

    Each market's newest quote (market_quotes_latest) and the freshness keys ride along with a
    batch at most once per second: upserting a quote costs far more than copying a tick.
    """

    def __init__(
        self,
        buffer: StreamBuffer,
        sink: Sink,
        *,
        batch_size: int,
        flush_seconds: float,
        stats: StreamStats | None = None,
        state_interval: float = 1.0,
        quotes_interval: float = 1.0,
        clock: Callable[[], float] = trio.current_time,
        retry_base: float = 0.5,
        retry_cap: float = 10.0,
    ) -> None:
        if batch_size < 1 or flush_seconds <= 0:
            raise ValueError("batch_size must be >= 1 and flush_seconds > 0")
        self.buffer = buffer
        self.sink = sink
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.stats = stats or StreamStats()
        self.freshness = Freshness(state_interval)
        self.quotes_interval = quotes_interval
        self._quotes_written = -math.inf
        self.clock = clock
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._wake = trio.Event()
        self._sleep_until = math.inf
        self._inflight: Batch | None = None

    # ---- scheduling -----------------------------------------------------------------------

    def poke(self) -> None:
        """Tell the writer new items arrived. It only wakes when that changes its plan: the
        batch is full, or the oldest item is due before the writer meant to wake."""
        buf = self.buffer
        if buf.pending >= self.batch_size or (
            buf.oldest is not None and buf.oldest + self.flush_seconds < self._sleep_until
        ):
            self._wake.set()

    def due_at(self) -> float:
        """Trio time of the next flush, ignoring the size trigger (inf: nothing to do)."""
        due = math.inf
        if self.buffer.has_work and self.buffer.oldest is not None:
            due = self.buffer.oldest + self.flush_seconds
        state_due = self.freshness.due_at()
        if state_due is not None:
            due = min(due, state_due)
        if self.buffer.quotes_pending and not self.buffer.pending:
            # quotes whose ticks are all committed: a quote-only batch once the interval is up
            due = min(due, self._quotes_written + self.quotes_interval)
        return due

    async def run(self) -> None:
        """Flush whenever the batch is full or the oldest item has waited flush_seconds."""
        while True:
            if self.buffer.pending >= self.batch_size or self.clock() >= self.due_at():
                if await self.flush_once() is None:
                    # nothing was due after all; never spin without yielding
                    await trio.sleep(IDLE_RECHECK_SECONDS)
                continue
            self._wake = trio.Event()
            self._sleep_until = self.due_at()
            with trio.move_on_at(self._sleep_until):
                await self._wake.wait()
            self._sleep_until = math.inf

    # ---- writing --------------------------------------------------------------------------

    async def flush_once(self, *, force_state: bool = False) -> SinkResult | None:
        """Write the in-flight batch, or take the pending items and write them; retries
        transient errors until it succeeds (or is cancelled)."""
        batch = self._inflight
        if batch is None:
            quotes = force_state or self.clock() >= self._quotes_written + self.quotes_interval
            batch = self._inflight = self.buffer.take(quotes=quotes, now=self.clock())
        attempt = 0
        while True:
            now = self.clock()
            if force_state:
                state = self.freshness.candidate(batch.max_ts_us, batch.max_received_at)
            else:
                state = self.freshness.plan(batch.max_ts_us, batch.max_received_at, now)
            if not batch and state is None:
                self._inflight = None
                self.buffer.release(batch)
                return None
            try:
                result = await self.sink(batch, state)
            except TRANSIENT_ERRORS as exc:
                attempt += 1
                self.stats.batch_errors += 1
                delay = min(self.retry_cap, self.retry_base * 2 ** (attempt - 1))
                delay *= 0.5 + random.random() / 2
                log.warning(
                    "ws batch write failed attempt=%d ticks=%d lifecycle=%d error=%s "
                    "retry_in=%.1fs",
                    attempt, len(batch.ticks), len(batch.lifecycle),
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    delay,
                )
                await trio.sleep(delay)
                continue
            break
        committed = self.clock()
        if batch.quotes:
            self._quotes_written = committed
        self._inflight = None
        self.buffer.release(batch)
        self.freshness.committed(batch.max_ts_us, batch.max_received_at, state, committed)
        self._account(batch, result, committed)
        return result

    def _account(self, batch: Batch, result: SinkResult, committed: float) -> None:
        st = self.stats
        st.batches += 1
        st.ticks_written += result.ticks_inserted
        st.ticks_already_stored += result.ticks_duplicate
        st.lifecycle_written += result.lifecycle_inserted
        st.gaps_recorded += len(batch.gaps)
        if result.path in ("staged", "rows"):
            st.fallback_batches += 1
            log.info("ws batch had rows already stored path=%s ticks=%d already_stored=%d",
                     result.path, len(batch.ticks), result.ticks_duplicate)
        if batch.ticks:
            received = [r.received_clock for r in batch.ticks]
            st.latency.add_many(committed, received)
            st.window.add_many(committed, received)
        if result.ticks_rejected or result.lifecycle_rejected:
            self._record_rejected(batch, result, committed)

    def _record_rejected(self, batch: Batch, result: SinkResult, now: float) -> None:
        rows = [batch.ticks[i] for i in result.ticks_rejected]
        events = [batch.lifecycle[i] for i in result.lifecycle_rejected]
        self.stats.ticks_rejected += len(rows)
        self.stats.lifecycle_rejected += len(events)
        times: list[datetime] = [r.received_at for r in rows] + [e.received_at for e in events]
        markets = {r.ticker for r in rows} | {
            e.market_ticker or e.event_ticker or "" for e in events
        }
        markets.discard("")
        gap = GapRecord(
            REJECTED, min(times), max(times), tuple(sorted(markets)), len(rows),
            {"lifecycle_rejected": len(events)},
        )
        log.error("ws rows rejected by the database ticks=%d lifecycle=%d (recorded in ws_gaps)",
                  len(rows), len(events))
        self.buffer.add_gap(gap, now)

    async def flush_all(self) -> bool:
        """Write everything held (in-flight batch first), with a final state update; True when
        nothing is left. Run it under the caller's deadline."""
        while self._inflight is not None or self.buffer.has_work or self.buffer.quotes_pending:
            await self.flush_once(force_state=True)
        if self.freshness.due_at() is not None:
            await self.flush_once(force_state=True)
        return self._inflight is None and not self.buffer.has_work
