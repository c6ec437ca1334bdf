"""Candles of one market: the single implementation used by the rest role and the worker.

`backfill_market` fetches, for each period, the candles from the newest stored one (or the
market's open) to its close or now, in calls of at most 5000 candles, and upserts each call's
candles in its own transaction before asking for the next, so an interruption resumes where
it stopped. A call that fails after its retries fails the market and stops that period (later
chunks are not fetched, so no range is ever skipped). Markets archived before the historical
cutoff are read from the /historical endpoints; a live 404 falls back to them once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ingestor.backfill.candle_rows import candle_row
from ingestor.backfill.ranges import RangeRequest, chunk_range, epoch, plan_range
from ingestor.catalog.feed import fetch_candles
from ingestor.catalog.parse import ParseReport
from ingestor.db import candles as candle_store
from ingestor.db.connect import Database
from ingestor.kalshi.errors import KalshiError, KalshiNotFoundError
from ingestor.kalshi.models import to_datetime
from ingestor.kalshi.rest import KalshiRestClient

log = logging.getLogger(__name__)

# A closed market's last candle is taken as final this long after its close.
SETTLE_DELAY = timedelta(minutes=5)


class JobPayloadError(ValueError):
    """A backfill_market payload does not follow the queue contract."""


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class MarketRef:
    """What candle fetching needs to know about a market."""

    ticker: str
    series_ticker: str | None
    strike_period: str | None
    open_time: datetime | None
    close_time: datetime | None
    settlement_ts: datetime | None = None
    historical: bool | None = None  # None: decide from the cutoff, fall back on a live 404

    def job_payload(self, force_full: bool = False) -> dict[str, Any]:
        """The backfill_market payload (queue contract)."""
        payload: dict[str, Any] = {
            "series_ticker": self.series_ticker,
            "strike_period": self.strike_period,
            "market": {
                "ticker": self.ticker,
                "open_time": _iso(self.open_time),
                "close_time": _iso(self.close_time),
            },
        }
        if force_full:
            payload["force_full"] = True
        return payload

    @classmethod
    def from_job_payload(cls, payload: Mapping[str, Any]) -> MarketRef:
        """Parse a backfill_market payload or raise JobPayloadError naming the problem."""
        market = payload.get("market")
        if not isinstance(market, Mapping):
            raise JobPayloadError("backfill_market payload needs a 'market' object")
        ticker = market.get("ticker")
        if not isinstance(ticker, str) or not ticker:
            raise JobPayloadError("backfill_market payload needs market.ticker")
        series = payload.get("series_ticker")
        if series is not None and not isinstance(series, str):
            raise JobPayloadError("backfill_market series_ticker must be a string")
        strike = payload.get("strike_period")
        try:
            open_time = to_datetime(market.get("open_time"))
            close_time = to_datetime(market.get("close_time"))
        except ValueError as exc:
            raise JobPayloadError(f"backfill_market {ticker}: {exc}") from None
        return cls(
            ticker=ticker,
            series_ticker=series or None,
            strike_period=strike if isinstance(strike, str) else None,
            open_time=open_time,
            close_time=close_time,
        )


def force_full_of(payload: Mapping[str, Any]) -> bool:
    """The optional force_full flag of a backfill_market payload."""
    return payload.get("force_full") is True


@dataclass
class CoverageMemo:
    """Ranges of closed markets fetched in this process, so sparse tails are not asked again."""

    fetched_through: dict[tuple[str, int], int] = field(default_factory=dict)

    def get(self, ticker: str, period: int) -> int | None:
        return self.fetched_through.get((ticker, period))

    def record(self, ticker: str, period: int, end_ts: int) -> None:
        key = (ticker, period)
        self.fetched_through[key] = max(end_ts, self.fetched_through.get(key, end_ts))

    def complete_tickers(self, periods: Sequence[int]) -> set[str]:
        """Markets fetched through their close for every one of `periods`."""
        by_ticker: dict[str, set[int]] = {}
        for ticker, period in self.fetched_through:
            by_ticker.setdefault(ticker, set()).add(period)
        wanted = set(periods)
        return {t for t, got in by_ticker.items() if wanted <= got}


@dataclass
class PeriodResult:
    period: int
    start_ts: int | None = None
    end_ts: int | None = None
    calls: int = 0
    received: int = 0
    written: int = 0
    fetched_through: int | None = None


@dataclass
class MarketBackfillResult:
    """What one market's backfill did; `ok` False means some range is still missing."""

    ticker: str
    ok: bool = True
    historical: bool = False
    not_found: bool = False
    requests: int = 0
    candles_received: int = 0
    candles_written: int = 0
    skipped_records: int = 0
    error: str | None = None
    periods: list[PeriodResult] = field(default_factory=list)


async def historical_cutoff(client: KalshiRestClient) -> datetime | None:
    """market_settled_ts of /historical/cutoff; None when the server has no such endpoint."""
    try:
        return (await client.historical_cutoff()).market_settled_ts
    except KalshiNotFoundError:
        log.warning("no /historical/cutoff on this server; using live candle endpoints first")
        return None


def is_historical(market: MarketRef, cutoff: datetime | None) -> bool:
    """Archived markets (settled before the historical cutoff) live under /historical."""
    if market.historical is not None:
        return market.historical
    if not market.series_ticker:
        return True
    return cutoff is not None and market.settlement_ts is not None and market.settlement_ts < cutoff


async def backfill_market(
    client: KalshiRestClient,
    db: Database,
    market: MarketRef,
    periods: Sequence[int],
    *,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    force_full: bool = False,
    cutoff: datetime | None = None,
    lookback: timedelta = timedelta(hours=72),
    memo: CoverageMemo | None = None,
) -> MarketBackfillResult:
    """Fetch and store the candles a market is missing (or [start, end] when given)."""
    result = MarketBackfillResult(market.ticker, historical=is_historical(market, cutoff))
    explicit = start is not None or end is not None
    last: dict[int, datetime] = {}
    if not force_full and start is None:
        last = await db.run(candle_store.last_end_times, market.ticker, list(periods))
    # A closed market fetched through its close needs no second look at its (sparse) tail.
    close = market.close_time
    final_ts = epoch(close) if close is not None and now - close >= SETTLE_DELAY else None
    report = ParseReport()
    for period in periods:
        outcome = PeriodResult(period)
        result.periods.append(outcome)
        planned = plan_range(
            RangeRequest(
                period=period,
                open_time=market.open_time,
                close_time=market.close_time,
                now=now,
                last_end=last.get(period),
                fetched_through=None
                if memo is None or explicit
                else memo.get(market.ticker, period),
                start=start,
                end=end,
                force_full=force_full,
                lookback=lookback,
            )
        )
        if planned is None:
            continue
        outcome.start_ts, outcome.end_ts = planned
        for lo, hi in chunk_range(*planned, period):
            try:
                parsed = await _fetch(client, market, period, lo, hi, result, report)
            except KalshiNotFoundError as exc:
                result.not_found = True
                result.error = str(exc)
                log.warning(
                    "candles not found ticker=%s period=%s historical=%s: %s",
                    market.ticker,
                    period,
                    result.historical,
                    exc,
                )
                return _finish(result, report)
            except KalshiError as exc:
                result.ok = False
                result.error = str(exc)
                log.warning(
                    "candle backfill failed ticker=%s period=%s start_ts=%s end_ts=%s: %s",
                    market.ticker,
                    period,
                    lo,
                    hi,
                    exc,
                )
                return _finish(result, report)
            outcome.calls += 1
            rows = [candle_row(market.ticker, period, c) for c in parsed]
            outcome.received += len(rows)
            if rows:
                try:
                    outcome.written += await db.run(candle_store.upsert_candles, rows)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as exc:
                    result.ok = False
                    result.error = f"storing candles failed: {exc}"
                    log.error(
                        "candle upsert failed ticker=%s period=%s: %s", market.ticker, period, exc
                    )
                    return _finish(result, report)
            outcome.fetched_through = hi
        through = outcome.fetched_through
        if (
            memo is not None
            and final_ts is not None
            and through is not None
            and through >= final_ts
        ):
            memo.record(market.ticker, period, through)
    return _finish(result, report)


async def _fetch(
    client: KalshiRestClient,
    market: MarketRef,
    period: int,
    lo: int,
    hi: int,
    result: MarketBackfillResult,
    report: ParseReport,
) -> list[Any]:
    """One candle call, falling back from the live to the historical endpoint on a 404."""
    result.requests += 1
    try:
        return await fetch_candles(
            client,
            ticker=market.ticker,
            series_ticker=market.series_ticker,
            period=period,
            start_ts=lo,
            end_ts=hi,
            historical=result.historical,
            report=report,
        )
    except KalshiNotFoundError:
        if result.historical or market.historical is False:
            raise
        log.info("market archived, using historical candles ticker=%s", market.ticker)
        result.historical = True
        result.requests += 1
        return await fetch_candles(
            client,
            ticker=market.ticker,
            series_ticker=market.series_ticker,
            period=period,
            start_ts=lo,
            end_ts=hi,
            historical=True,
            report=report,
        )


def _finish(result: MarketBackfillResult, report: ParseReport) -> MarketBackfillResult:
    result.candles_received = sum(p.received for p in result.periods)
    result.candles_written = sum(p.written for p in result.periods)
    result.skipped_records = report.skipped
    return result
