"""One backfill pass: list markets closing after the cursor, fetch (or enqueue) their candles.

The pass lists events for each BACKFILL_EVENT_STATUSES value with min_close_ts = cursor (and
archived markets from /historical/markets while the cursor is before the historical cutoff),
stores them, then backfills every market closing at or after the cursor, oldest close first,
a few at a time. The cursor (last_min_close_ts) advances with the WindowTracker: only past
windows whose markets are all done. Progress goes to backfill_runs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import psycopg
import trio

from ingestor.backfill.market_candles import (
    CoverageMemo,
    MarketBackfillResult,
    MarketRef,
    backfill_market,
    historical_cutoff,
)
from ingestor.backfill.ranges import RangeRequest, plan_range
from ingestor.backfill.window import WindowTracker, default_cursor
from ingestor.catalog.batch import CatalogBatch, build_batch, build_market_batch
from ingestor.catalog.feed import event_pages, market_pages
from ingestor.catalog.filters import StrikeFilter
from ingestor.catalog.parse import ParsedEvent, ParsedMarket
from ingestor.catalog.rows import MarketRecord
from ingestor.clock import Clock, wall_clock
from ingestor.config import RestSettings
from ingestor.db import backfill_runs, catalog, ingest_state, work_queue
from ingestor.db import candles as candle_store
from ingestor.db.connect import Database
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.loops import is_cancellation

log = logging.getLogger(__name__)

ROLE = "rest"
CURSOR_KEY = "last_min_close_ts"
CONCURRENCY = 4  # markets fetched at once; the shared token bucket sets the real pace
PROGRESS_SECONDS = 2.0  # how often backfill_runs and the cursor are written during a pass
ENQUEUE_BATCH = 500
FAILED_LISTED = 50  # failed tickers kept in backfill_runs.detail


@dataclass(frozen=True)
class BackfillConfig:
    statuses: tuple[str, ...]
    strike: StrikeFilter
    periods: tuple[int, ...]
    start_days: float
    lookback: timedelta
    queue: bool
    max_attempts: int
    concurrency: int = CONCURRENCY

    @classmethod
    def from_settings(cls, settings: RestSettings) -> BackfillConfig:
        return cls(
            statuses=tuple(settings.backfill_event_statuses),
            strike=StrikeFilter.of(
                settings.strike_periods,
                settings.strike_hour_max_hours,
                settings.strike_day_max_hours,
            ),
            periods=tuple(settings.candle_periods),
            start_days=settings.backfill_start_days,
            lookback=timedelta(hours=settings.candle_lookback_hours),
            queue=settings.work_queue_enable,
            max_attempts=settings.work_queue_max_attempts,
        )


@dataclass
class BackfillState:
    """What the role keeps between passes (in memory only)."""

    memo: CoverageMemo = field(default_factory=CoverageMemo)


@dataclass
class BackfillPassResult:
    run_id: int | None = None
    status: str = "running"
    cursor_before: datetime | None = None
    cursor_after: datetime | None = None
    markets_total: int = 0
    markets_done: int = 0
    failed: list[str] = field(default_factory=list)
    not_found: int = 0
    not_found_tickers: list[str] = field(default_factory=list)
    enqueued: int = 0
    candles_written: int = 0
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Candidate:
    """A market in the pass, with where its candles are served from."""

    record: MarketRecord
    historical: bool

    def ref(self) -> MarketRef:
        r = self.record
        return MarketRef(
            ticker=r.ticker,
            series_ticker=r.series_ticker,
            strike_period=r.strike_period,
            open_time=r.open_time,
            close_time=r.close_time,
            settlement_ts=r.settlement_ts,
            historical=True if self.historical else None,
        )


def read_cursor(conn: psycopg.Connection) -> datetime | None:
    """The stored last_min_close_ts, None when absent or unreadable."""
    entry = ingest_state.read(conn, CURSOR_KEY)
    return entry.value if entry is not None else None


def write_cursor(conn: psycopg.Connection, cursor: datetime) -> None:
    ingest_state.write(conn, CURSOR_KEY, cursor, ROLE)


class _Pass:
    """The state of one running pass."""

    def __init__(
        self,
        client: KalshiRestClient,
        db: Database,
        config: BackfillConfig,
        state: BackfillState,
        now: Clock,
        wall: Clock,
    ) -> None:
        self.client = client
        self.db = db
        self.config = config
        self.state = state
        self.now = now
        self.wall = wall
        self.result = BackfillPassResult()
        self.progress = backfill_runs.RunProgress()
        self.requests_before = client.stats.requests
        self.candidates: dict[str, Candidate] = {}
        self.tracker: WindowTracker | None = None
        self.cutoff: datetime | None = None
        self.written_cursor: datetime | None = None
        self.last_flush = trio.current_time()
        self.flush_lock = trio.Lock()
        self.listed_series: set[str] = set()

    # ---- listing -------------------------------------------------------------------------

    async def _store(self, batch: CatalogBatch, as_of: datetime, historical: bool) -> None:
        await self.db.run(functools.partial(catalog.store_batch, add_active=False), batch, as_of)
        self.listed_series.update(r.series_ticker for r in batch.records if r.series_ticker)
        cursor = self.result.cursor_before
        assert cursor is not None
        for record in batch.records:
            if record.close_time is not None and record.close_time < cursor:
                continue
            known = self.candidates.get(record.ticker)
            if known is None or (historical and not known.historical):
                self.candidates[record.ticker] = Candidate(record, historical)

    async def list_markets(self, cursor: datetime) -> None:
        for status in self.config.statuses:
            async for page in event_pages(
                self.client, status=status, min_close_ts=cursor, nested=True, wall=self.wall
            ):
                self.result.errors += page.report.skipped
                await self._store(
                    build_batch(page.events, self.config.strike), page.fetched_at, False
                )
        if self.cutoff is not None and cursor < self.cutoff:
            await self._list_historical(cursor)

    async def _list_historical(self, cursor: datetime) -> None:
        """Archived markets closing at or after the cursor, found series by series.

        /historical/markets has no time filter, so the series of every kept event (this
        pass's listing and the events table) are paged and filtered here by close time. It
        only runs while the cursor is before the historical cutoff (a catch-up).
        """
        series = self.listed_series | set(await self.db.run(catalog.series_tickers))
        archived: list[ParsedMarket] = []
        as_of = self.wall()
        for series_ticker in sorted(series):
            async for page in market_pages(
                self.client, historical=True, series_ticker=series_ticker, wall=self.wall
            ):
                self.result.errors += page.report.skipped
                as_of = min(as_of, page.fetched_at)
                archived.extend(
                    m
                    for m in page.markets
                    if m.market.close_time is None or m.market.close_time >= cursor
                )
        if not archived:
            return
        wanted = sorted({m.market.event_ticker for m in archived if m.market.event_ticker})
        events: dict[str, ParsedEvent] = {}
        async for page in event_pages(self.client, tickers=wanted, nested=False, wall=self.wall):
            self.result.errors += page.report.skipped
            for parsed in page.events:
                events[parsed.event.event_ticker] = parsed
        batch = build_market_batch(archived, events, self.config.strike)
        if batch.orphans:
            log.warning(
                "archived markets without a known event count=%d first=%s",
                len(batch.orphans),
                batch.orphans[0],
            )
            self.result.errors += len(batch.orphans)
        await self._store(batch, as_of, True)

    # ---- progress ------------------------------------------------------------------------

    def _sync_progress(self) -> None:
        r = self.result
        r.requests = self.client.stats.requests - self.requests_before
        self.progress.markets_total = r.markets_total
        self.progress.markets_done = r.markets_done
        self.progress.candles_written = r.candles_written
        self.progress.requests = r.requests
        self.progress.errors = r.errors
        self.progress.detail = {
            "mode": "queue" if self.config.queue else "inline",
            "cursor_before": _iso(r.cursor_before),
            "cursor": _iso(self.tracker.cursor if self.tracker else r.cursor_before),
            "failed": r.failed[:FAILED_LISTED],
            "failed_count": len(r.failed),
            "not_found": r.not_found,
            "not_found_tickers": r.not_found_tickers,
            "enqueued": r.enqueued,
            "historical_cutoff": _iso(self.cutoff),
        }

    async def flush(self, status: str = "running", force: bool = False) -> None:
        """Write progress and (when it moved) the cursor, at most every PROGRESS_SECONDS."""
        if not force and trio.current_time() - self.last_flush < PROGRESS_SECONDS:
            return
        async with self.flush_lock:
            self.last_flush = trio.current_time()
            self._sync_progress()
            progress = replace(self.progress, detail=dict(self.progress.detail))
            cursor = self.tracker.cursor if self.tracker is not None else None
            if cursor is not None and cursor == self.written_cursor:
                cursor = None
            run_id = self.result.run_id

            def write(conn: psycopg.Connection) -> None:
                if cursor is not None:
                    write_cursor(conn, cursor)
                if run_id is not None:
                    backfill_runs.update(conn, run_id, progress, status)

            await self.db.run(write)
            if cursor is not None:
                self.written_cursor = cursor

    # ---- markets -------------------------------------------------------------------------

    async def _done(self, ticker: str, ok: bool, outcome: MarketBackfillResult | None) -> None:
        assert self.tracker is not None
        self.tracker.finish(ticker, ok)
        r = self.result
        r.markets_done += 1
        if outcome is not None:
            r.candles_written += outcome.candles_written
            r.errors += outcome.skipped_records
            if outcome.not_found:  # answered 404 live and archived: done, but reported
                r.not_found += 1
                r.errors += 1
                if len(r.not_found_tickers) < FAILED_LISTED:
                    r.not_found_tickers.append(ticker)
        if not ok:
            r.failed.append(ticker)
            r.errors += 1
        await self.flush()

    async def backfill_all(self, order: Sequence[str]) -> None:
        send, receive = trio.open_memory_channel[str](0)

        async def worker(receive: trio.MemoryReceiveChannel[str]) -> None:
            async with receive:
                async for ticker in receive:
                    candidate = self.candidates[ticker]
                    outcome = await backfill_market(
                        self.client,
                        self.db,
                        candidate.ref(),
                        self.config.periods,
                        now=self.now(),
                        cutoff=self.cutoff,
                        lookback=self.config.lookback,
                        memo=self.state.memo,
                    )
                    await self._done(ticker, outcome.ok, outcome)

        async with trio.open_nursery() as nursery:
            for _ in range(max(1, self.config.concurrency)):
                nursery.start_soon(worker, receive.clone())
            await receive.aclose()
            async with send:
                for ticker in order:
                    await send.send(ticker)

    async def enqueue_all(self, order: Sequence[str], now: datetime) -> None:
        for start in range(0, len(order), ENQUEUE_BATCH):
            chunk = list(order[start : start + ENQUEUE_BATCH])
            refs = [self.candidates[t].ref() for t in chunk]
            self.result.enqueued += await self.db.run(
                functools.partial(
                    enqueue_missing,
                    periods=self.config.periods,
                    now=now,
                    memo=self.state.memo,
                    max_attempts=self.config.max_attempts,
                ),
                refs,
            )
            for ticker in chunk:
                await self._done(ticker, True, None)


def enqueue_missing(
    conn: psycopg.Connection,
    refs: Sequence[MarketRef],
    *,
    periods: Sequence[int],
    now: datetime,
    memo: CoverageMemo,
    max_attempts: int,
) -> int:
    """Enqueue backfill_market jobs for the markets that still miss candles; returns inserted."""
    last = candle_store.last_end_times_many(conn, [r.ticker for r in refs], periods)
    jobs = [
        (r.ticker, r.job_payload())
        for r in refs
        if _needs_candles(r, periods, last.get(r.ticker, {}), now, memo)
    ]
    return work_queue.enqueue(conn, work_queue.JOB_BACKFILL_MARKET, jobs, max_attempts=max_attempts)


def _needs_candles(
    ref: MarketRef,
    periods: Sequence[int],
    last: dict[int, datetime],
    now: datetime,
    memo: CoverageMemo,
) -> bool:
    for period in periods:
        req = RangeRequest(
            period=period,
            open_time=ref.open_time,
            close_time=ref.close_time,
            now=now,
            last_end=last.get(period),
            fetched_through=memo.get(ref.ticker, period),
        )
        if plan_range(req) is not None:
            return True
    return False


def _iso(value: datetime | None) -> str | None:
    return None if value is None else ingest_state.format_ts(value)


async def backfill_pass(
    client: KalshiRestClient,
    db: Database,
    config: BackfillConfig,
    state: BackfillState,
    *,
    now: Clock = wall_clock,
    wall: Clock = wall_clock,
) -> BackfillPassResult:
    """One pass; the cursor only moves past windows whose markets are all done."""
    p = _Pass(client, db, config, state, now, wall)
    r = p.result
    t0 = trio.current_time()
    status = "failed"
    try:
        stored = await db.run(read_cursor)
        pass_now = now()
        cursor = stored or default_cursor(pass_now, config.start_days)
        r.cursor_before = cursor
        p.cutoff = await historical_cutoff(client)
        r.run_id = await db.run(
            backfill_runs.start,
            cursor,
            pass_now,
            {"mode": "queue" if config.queue else "inline", "cursor_before": _iso(cursor)},
        )
        await p.list_markets(cursor)
        closes = {t: c.record.close_time for t, c in p.candidates.items()}
        p.tracker = WindowTracker(cursor, pass_now, closes)
        r.markets_total = len(closes)
        await p.flush(force=True)
        order = p.tracker.order()
        if config.queue:
            await p.enqueue_all(order, pass_now)
        else:
            await p.backfill_all(order)
        status = "failed" if r.failed else "completed"
    except BaseException as exc:
        status = "interrupted" if is_cancellation(exc) else "failed"
        raise
    finally:
        r.status = status
        r.cursor_after = p.tracker.cursor if p.tracker is not None else r.cursor_before
        r.seconds = trio.current_time() - t0
        if r.run_id is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await p.flush(status, force=True)
        r.requests = client.stats.requests - p.requests_before
        log.info(
            "metric=rest.backfill status=%s window_start=%s window_end=%s markets=%d done=%d "
            "failed=%d enqueued=%d candles=%d requests=%d errors=%d cursor=%s seconds=%.2f",
            status,
            _iso(r.cursor_before),
            _iso(p.tracker.now if p.tracker else None),
            r.markets_total,
            r.markets_done,
            len(r.failed),
            r.enqueued,
            r.candles_written,
            r.requests,
            r.errors,
            _iso(r.cursor_after),
            r.seconds,
        )
    return r
