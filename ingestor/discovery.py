"""Discovery: keep events, markets and active_markets equal to what the API lists.

Every pass lists events for each DISCOVERY_EVENT_STATUSES value with nested markets and
upserts every event and market the strike filter keeps (known ones included: nothing is
skipped for looking unchanged), one page per transaction. active_markets gets the open and
paused markets; rows the pass did not see are removed, and last_discovery_ts written, only
after a complete pass. Between passes, lifecycle messages stored by the ws role move
markets (pause, reactivation, close-time change, determination, settlement).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import trio

from ingestor.catalog.batch import build_batch
from ingestor.catalog.feed import event_pages
from ingestor.catalog.filters import StrikeFilter, normalise_strike_period
from ingestor.catalog.lifecycle import fold
from ingestor.catalog.rows import MarketRecord
from ingestor.clock import Clock, wall_clock
from ingestor.config import RestSettings
from ingestor.db import active_markets, catalog, ingest_state, ws_reads
from ingestor.db.connect import Database
from ingestor.kalshi.rest import KalshiRestClient

log = logging.getLogger(__name__)

ROLE = "rest"
LIFECYCLE_OVERLAP = timedelta(minutes=5)
LIFECYCLE_BATCH = 5000


@dataclass(frozen=True)
class DiscoveryConfig:
    statuses: tuple[str, ...]
    strike: StrikeFilter

    @classmethod
    def from_settings(cls, settings: RestSettings) -> DiscoveryConfig:
        return cls(
            statuses=tuple(settings.discovery_event_statuses),
            strike=StrikeFilter.of(
                settings.strike_periods,
                settings.strike_hour_max_hours,
                settings.strike_day_max_hours,
            ),
        )


@dataclass
class DiscoveryResult:
    events: int = 0
    markets: int = 0
    active: int = 0
    removed: int = 0
    filtered_out: int = 0
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    lifecycle_applied: int = 0


def _finish_pass(conn: psycopg.Connection, started: datetime, now: datetime) -> tuple[int, int]:
    """Drop active rows the pass did not see, record the pass: (removed, active count)."""
    removed = active_markets.remove_unseen(conn, started, now)
    ingest_state.write(conn, "last_discovery_ts", started, ROLE)
    return removed, active_markets.count(conn)


async def discovery_pass(
    client: KalshiRestClient,
    db: Database,
    config: DiscoveryConfig,
    *,
    lifecycle: LifecycleApplier | None = None,
    now: Clock = wall_clock,
    wall: Clock = wall_clock,
) -> DiscoveryResult:
    """One complete pass; raises (leaving the active set and last_discovery_ts alone) on failure."""
    result = DiscoveryResult()
    started = wall()
    t0 = trio.current_time()
    requests_before = client.stats.requests
    try:
        if lifecycle is not None:
            result.lifecycle_applied = (await lifecycle.apply(db)).patched
        for status in config.statuses:
            async for page in event_pages(client, status=status, nested=True, wall=wall):
                result.errors += page.report.skipped
                batch = build_batch(page.events, config.strike)
                result.filtered_out += batch.filtered_out
                counts = await db.run(
                    functools.partial(catalog.store_batch, add_active=True),
                    batch,
                    page.fetched_at,
                )
                result.events += len(batch.events)
                result.markets += len(batch.markets)
                result.removed += counts.active_removed
        removed, result.active = await db.run(_finish_pass, started, now())
        result.removed += removed
    except BaseException:
        result.errors += 1
        raise
    finally:
        result.requests = client.stats.requests - requests_before
        result.seconds = trio.current_time() - t0
        log.info(
            "metric=rest.discovery events=%d markets=%d active=%d removed=%d filtered=%d "
            "lifecycle=%d requests=%d errors=%d seconds=%.2f",
            result.events,
            result.markets,
            result.active,
            result.removed,
            result.filtered_out,
            result.lifecycle_applied,
            result.requests,
            result.errors,
            result.seconds,
        )
    return result


@dataclass
class LifecycleResult:
    read: int = 0
    patched: int = 0
    left_active: int = 0
    active_updated: int = 0
    last_id: int = 0
    opened: int = 0
    pruned: int = 0


class LifecycleApplier:
    """Applies stored lifecycle messages, and the transitions Kalshi sends no message for.

    Messages: the high-water mark is the server time of the previous read; each read goes
    back LIFECYCLE_OVERLAP before it so rows committed late are not missed. Messages older
    than a market's as-of time are skipped by the query, so re-reading the overlap changes
    nothing. After a restart reading starts at the oldest as-of time of an active market.

    Times: a stored market that reached its open_time (initialized -> active has no message)
    joins active_markets at once; rows past close + CLOSED_CLEANUP_GRACE_MINUTES leave it.
    """

    def __init__(
        self,
        *,
        now: Clock = wall_clock,
        wall: Clock = wall_clock,
        grace: timedelta = timedelta(minutes=30),
    ) -> None:
        self.now = now
        self.wall = wall
        self.grace = grace
        self.since: datetime | None = None
        self.last_id = 0
        self._lock = trio.Lock()

    def _apply(
        self, conn: psycopg.Connection, since: datetime | None, now: datetime, wall: datetime
    ) -> tuple[LifecycleResult, datetime]:
        if since is None:
            since = ws_reads.lifecycle_start(conn) + LIFECYCLE_OVERLAP
        read_at = ws_reads.db_now(conn)
        rows = []
        after_id = 0
        while True:
            chunk = ws_reads.lifecycle_since(
                conn, since - LIFECYCLE_OVERLAP, after_id, LIFECYCLE_BATCH
            )
            rows.extend(chunk)
            if len(chunk) < LIFECYCLE_BATCH:
                break
            after_id = chunk[-1].id
        patches = fold(rows)
        result = LifecycleResult(read=len(rows), last_id=max((r.id for r in rows), default=0))
        result.patched = catalog.apply_patches(conn, patches)
        result.left_active, result.active_updated = active_markets.apply_patches(conn, patches)
        opened = catalog.open_due(conn, now)
        records = [market_record_of(m, status=catalog.INFERRED_OPEN_STATUS) for m in opened]
        result.opened = active_markets.upsert(conn, [r.active_row() for r in records], wall)
        result.pruned = active_markets.prune_closed(conn, now - self.grace)
        return result, read_at

    async def apply(self, db: Database) -> LifecycleResult:
        """Apply what arrived since the last call and what the clock implies (one transaction)."""
        async with self._lock:
            result, read_at = await db.run(self._apply, self.since, self.now(), self.wall())
            self.since = read_at
            self.last_id = max(self.last_id, result.last_id)
        if result.patched or result.left_active or result.opened or result.pruned:
            log.info(
                "metric=rest.lifecycle read=%d patched=%d left_active=%d active_updated=%d "
                "opened=%d pruned=%d last_id=%d",
                result.read,
                result.patched,
                result.left_active,
                result.active_updated,
                result.opened,
                result.pruned,
                self.last_id,
            )
        return result


def market_record_of(market: catalog.StoredMarket, *, status: str) -> MarketRecord:
    """The role's view of a stored market (its event's strike period normalised)."""
    return MarketRecord(
        ticker=market.ticker,
        event_ticker=market.event_ticker,
        series_ticker=market.series_ticker,
        strike_period=normalise_strike_period(market.strike_period),
        status=status,
        open_time=market.open_time,
        close_time=market.close_time,
        settlement_ts=market.settlement_ts,
        settlement_value_dollars=None,
    )
