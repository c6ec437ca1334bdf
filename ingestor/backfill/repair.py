"""Repair of closed markets: settlement values, candle tails, ws gaps; pruning; bounded per pass.

- active_markets rows more than CLOSED_CLEANUP_GRACE_MINUTES past their close are pruned.
- Closed markets without a settlement value are refreshed from /markets (then
  /historical/markets), least recently refreshed first, a limited number per pass.
- Closed markets whose stored candles stop before their last candle end get the tail
  fetched again (oldest close first, a limited number per pass; each market once per process,
  since a market without trades near its close legitimately has a sparse tail).
- Markets named in a ws gap (or, when the gap names none, markets open during it) get their
  candles for the gap window fetched again; a gap is done only when all of them succeed.
In queue mode the candle work is enqueued as backfill_market jobs instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
import trio

from ingestor.backfill.market_candles import (
    CoverageMemo,
    MarketRef,
    backfill_market,
    historical_cutoff,
)
from ingestor.catalog.batch import CatalogBatch
from ingestor.catalog.feed import market_pages
from ingestor.catalog.parse import ParsedMarket
from ingestor.catalog.rows import market_record, market_row
from ingestor.clock import Clock, wall_clock
from ingestor.config import RestSettings
from ingestor.db import active_markets, catalog, work_queue, ws_reads
from ingestor.db import candles as candle_store
from ingestor.db.catalog import StoredMarket
from ingestor.db.connect import Database
from ingestor.kalshi.rest import KalshiRestClient

log = logging.getLogger(__name__)

SETTLEMENT_LIMIT = 200
CANDLE_LIMIT = 50
GAP_LIMIT = 20
GAP_MARKET_LIMIT = 200
GAP_LOOKBACK = timedelta(days=1)  # gaps that ended before this (at start-up) are not revisited


@dataclass(frozen=True)
class RepairConfig:
    grace: timedelta
    horizon: timedelta
    periods: tuple[int, ...]
    lookback: timedelta
    queue: bool
    max_attempts: int
    settlement_limit: int = SETTLEMENT_LIMIT
    candle_limit: int = CANDLE_LIMIT
    gap_limit: int = GAP_LIMIT
    gap_market_limit: int = GAP_MARKET_LIMIT

    @classmethod
    def from_settings(cls, settings: RestSettings) -> RepairConfig:
        return cls(
            grace=timedelta(minutes=settings.closed_cleanup_grace_minutes),
            horizon=timedelta(days=settings.backfill_start_days),
            periods=tuple(settings.candle_periods),
            lookback=timedelta(hours=settings.candle_lookback_hours),
            queue=settings.work_queue_enable,
            max_attempts=settings.work_queue_max_attempts,
        )


@dataclass
class RepairState:
    """What repair remembers between passes (in memory only)."""

    memo: CoverageMemo = field(default_factory=CoverageMemo)
    tails_checked: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)  # settlement refresh found no such market
    gap_after_id: int = 0
    gap_since: datetime | None = None


@dataclass
class RepairResult:
    pruned: int = 0
    settlement_checked: int = 0
    settlement_filled: int = 0
    tails: int = 0
    gaps: int = 0
    gap_markets: int = 0
    enqueued: int = 0
    candles_written: int = 0
    failed: int = 0
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0


def _ref(m: StoredMarket) -> MarketRef:
    return MarketRef(
        ticker=m.ticker,
        series_ticker=m.series_ticker,
        strike_period=m.strike_period,
        open_time=m.open_time,
        close_time=m.close_time,
        settlement_ts=m.settlement_ts,
    )


def _store_refreshed(
    conn: psycopg.Connection, found: Sequence[ParsedMarket], as_of: datetime
) -> int:
    """Upsert refreshed markets under their stored event; returns how many have a settlement."""
    stored = {m.ticker: m for m in catalog.stored_markets(conn, [p.market.ticker for p in found])}
    batch = CatalogBatch()
    for parsed in found:
        known = stored.get(parsed.market.ticker)
        if known is None:
            continue
        batch.markets.append(market_row(parsed, known.event_ticker))
        batch.records.append(
            market_record(
                parsed.market, known.event_ticker, known.series_ticker, known.strike_period
            )
        )
    catalog.store_batch(conn, batch, as_of, add_active=False)
    return sum(1 for p in found if p.market.settlement_value_dollars is not None)


class Repair:
    """One repair pass over the database, the API and (in queue mode) the work queue."""

    def __init__(
        self,
        client: KalshiRestClient,
        db: Database,
        config: RepairConfig,
        state: RepairState,
        now: Clock,
        wall: Clock,
    ) -> None:
        self.client = client
        self.db = db
        self.config = config
        self.state = state
        self.now = now
        self.wall = wall
        self.result = RepairResult()
        self.cutoff: datetime | None = None
        self._cutoff_known = False

    async def _cutoff(self) -> datetime | None:
        if not self._cutoff_known:
            self.cutoff = await historical_cutoff(self.client)
            self._cutoff_known = True
        return self.cutoff

    async def prune(self, now: datetime) -> None:
        self.result.pruned = await self.db.run(active_markets.prune_closed, now - self.config.grace)

    async def settlements(self, now: datetime) -> None:
        tickers = await self.db.run(
            catalog.closed_missing_settlement,
            now - self.config.grace,
            now - self.config.horizon,
            self.config.settlement_limit,
            sorted(self.state.unknown),
        )
        if not tickers:
            return
        self.result.settlement_checked = len(tickers)
        found: dict[str, ParsedMarket] = {}
        as_of = self.wall()
        for historical in (False, True):
            missing = [t for t in tickers if t not in found]
            if not missing:
                break
            async for page in market_pages(
                self.client, historical=historical, tickers=missing, wall=self.wall
            ):
                self.result.errors += page.report.skipped
                as_of = min(as_of, page.fetched_at)
                for parsed in page.markets:
                    if parsed.market.ticker in missing:
                        found[parsed.market.ticker] = parsed
        for ticker in tickers:
            if ticker not in found:
                self.state.unknown.add(ticker)
        if found:
            self.result.settlement_filled = await self.db.run(
                _store_refreshed, list(found.values()), as_of
            )

    async def _candles(
        self,
        refs: Sequence[MarketRef],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[bool]:
        """Fetch (or enqueue) candles for each market; one ok flag per market."""
        if self.config.queue:
            jobs = [(r.ticker, r.job_payload(force_full=start is not None)) for r in refs]
            self.result.enqueued += await self.db.run(
                functools.partial(work_queue.enqueue, max_attempts=self.config.max_attempts),
                work_queue.JOB_BACKFILL_MARKET,
                jobs,
            )
            return [True] * len(refs)
        oks = []
        cutoff = await self._cutoff() if refs else None
        for ref in refs:
            outcome = await backfill_market(
                self.client,
                self.db,
                ref,
                self.config.periods,
                now=self.now(),
                start=start,
                end=end,
                cutoff=cutoff,
                lookback=self.config.lookback,
                memo=self.state.memo,
            )
            self.result.candles_written += outcome.candles_written
            self.result.errors += outcome.skipped_records
            if not outcome.ok:
                self.result.failed += 1
            oks.append(outcome.ok)
        return oks

    async def tails(self, now: datetime) -> None:
        gaps = await self.db.run(
            lambda conn: candle_store.closed_with_missing_tail(
                conn,
                periods=self.config.periods,
                closed_before=now - self.config.grace,
                closed_after=now - self.config.horizon,
                limit=self.config.candle_limit,
                exclude=sorted(
                    self.state.tails_checked | self.state.memo.complete_tickers(self.config.periods)
                ),
            )
        )
        refs = [
            MarketRef(
                g.ticker,
                g.series_ticker,
                g.strike_period,
                g.open_time,
                g.close_time,
                g.settlement_ts,
            )
            for g in gaps
        ]
        self.result.tails = len(refs)
        for ref, ok in zip(refs, await self._candles(refs), strict=True):
            if ok:
                self.state.tails_checked.add(ref.ticker)

    async def ws_gaps(self) -> None:
        state = self.state
        if state.gap_since is None:
            state.gap_since = self.wall() - GAP_LOOKBACK
        since = state.gap_since
        after = state.gap_after_id

        def read(conn: psycopg.Connection) -> tuple[list[ws_reads.WsGap], int | None]:
            return (
                ws_reads.ended_gaps(conn, after, since, self.config.gap_limit),
                ws_reads.oldest_open_gap_id(conn, after),
            )

        gaps, first_open = await self.db.run(read)
        for gap in gaps:
            if first_open is not None and gap.id > first_open:
                break  # an earlier gap is still open: keep the watermark before it
            if gap.markets:
                markets = await self.db.run(
                    catalog.stored_markets, list(gap.markets[: self.config.gap_market_limit])
                )
            else:
                markets = await self.db.run(
                    catalog.markets_open_during,
                    gap.started_at,
                    gap.ended_at,
                    self.config.gap_market_limit,
                )
            oks = await self._candles(
                [_ref(m) for m in markets], start=gap.started_at, end=gap.ended_at
            )
            self.result.gaps += 1
            self.result.gap_markets += len(markets)
            if not all(oks):
                log.warning(
                    "ws gap repair incomplete gap_id=%d failed=%d", gap.id, oks.count(False)
                )
                break
            state.gap_after_id = gap.id


async def repair_pass(
    client: KalshiRestClient,
    db: Database,
    config: RepairConfig,
    state: RepairState,
    *,
    now: Clock = wall_clock,
    wall: Clock = wall_clock,
) -> RepairResult:
    """Prune, then repair settlements, candle tails and ws gaps (bounded work)."""
    repair = Repair(client, db, config, state, now, wall)
    r = repair.result
    t0 = trio.current_time()
    requests_before = client.stats.requests
    try:
        at = now()
        await repair.prune(at)
        await repair.settlements(at)
        await repair.tails(at)
        await repair.ws_gaps()
    finally:
        r.requests = client.stats.requests - requests_before
        r.seconds = trio.current_time() - t0
        log.info(
            "metric=rest.repair pruned=%d settlement_checked=%d settlement_filled=%d tails=%d "
            "gaps=%d gap_markets=%d enqueued=%d candles=%d failed=%d requests=%d errors=%d "
            "seconds=%.2f",
            r.pruned,
            r.settlement_checked,
            r.settlement_filled,
            r.tails,
            r.gaps,
            r.gap_markets,
            r.enqueued,
            r.candles_written,
            r.failed,
            r.requests,
            r.errors,
            r.seconds,
        )
    return r
