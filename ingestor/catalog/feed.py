"""Lenient readers over the Kalshi REST client: pages of events, markets and candles.

They go through `KalshiRestClient.get_json` (rate limit, signing, retries; a call that
exhausts its retries raises) and parse each record on its own, so one malformed record is
logged and counted instead of failing the whole page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingestor.catalog.parse import (
    ParsedCandle,
    ParsedEvent,
    ParsedMarket,
    ParseReport,
    parse_candle,
    parse_event,
    parse_market,
)
from ingestor.clock import Clock, wall_clock
from ingestor.kalshi.endpoints import path_segment
from ingestor.kalshi.errors import KalshiPagingError, KalshiResponseError
from ingestor.kalshi.paging import check_period, chunks, next_cursor
from ingestor.kalshi.rest import KalshiRestClient

TICKERS_PER_REQUEST = 100
EVENTS_PAGE_LIMIT = 200
MARKETS_PAGE_LIMIT = 1000
HISTORICAL_PAGE_LIMIT = 200


@dataclass
class EventPage:
    events: list[ParsedEvent]
    report: ParseReport
    fetched_at: datetime  # wall time just before the request: the rows' as-of time


@dataclass
class MarketPage:
    markets: list[ParsedMarket]
    report: ParseReport
    fetched_at: datetime


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


async def _walk(
    client: KalshiRestClient, path: str, key: str, params: Mapping[str, Any], wall: Clock
) -> AsyncIterator[tuple[list[Any], datetime]]:
    """Raw items of a cursor-paged list, one page at a time."""
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        query = {k: v for k, v in params.items() if v is not None}
        if cursor:
            query["cursor"] = cursor
        fetched_at = wall()
        body = await client.get_json(path, query)
        items = body.get(key)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise KalshiResponseError(f"GET {path}: {key!r} is not a list")
        yield items, fetched_at
        cursor = next_cursor(body)
        if cursor is None:
            return
        if cursor in seen:
            raise KalshiPagingError(f"GET {path}: cursor repeated ({cursor[:40]!r})")
        seen.add(cursor)


async def event_pages(
    client: KalshiRestClient,
    *,
    status: str | None = None,
    min_close_ts: datetime | None = None,
    tickers: Sequence[str] | None = None,
    nested: bool = True,
    wall: Clock = wall_clock,
) -> AsyncIterator[EventPage]:
    """GET /events page by page (event `tickers` are sent in chunks of 100)."""
    base: dict[str, Any] = {
        "limit": EVENTS_PAGE_LIMIT,
        "status": status,
        "with_nested_markets": "true" if nested else None,
        "min_close_ts": _epoch(min_close_ts),
    }
    groups: list[list[str] | None] = (
        [None]
        if tickers is None
        else list(chunks(list(dict.fromkeys(tickers)), TICKERS_PER_REQUEST))
    )
    for group in groups:
        params = dict(base)
        if group is not None:
            params["tickers"] = ",".join(group)
        async for items, fetched_at in _walk(client, "/events", "events", params, wall):
            report = ParseReport()
            parsed = [p for p in (parse_event(i, report) for i in items) if p is not None]
            yield EventPage(parsed, report, fetched_at)


async def market_pages(
    client: KalshiRestClient,
    *,
    historical: bool = False,
    tickers: Sequence[str] | None = None,
    series_ticker: str | None = None,
    wall: Clock = wall_clock,
) -> AsyncIterator[MarketPage]:
    """GET /markets (or /historical/markets) page by page; `tickers` sent in chunks of 100.

    Only filters both endpoints document are offered: /historical/markets takes one of
    tickers, event_ticker or series_ticker and no time filters.
    """
    if tickers is not None and series_ticker is not None:
        raise ValueError("tickers and series_ticker are mutually exclusive")
    path = "/historical/markets" if historical else "/markets"
    base: dict[str, Any] = {
        "limit": HISTORICAL_PAGE_LIMIT if historical else MARKETS_PAGE_LIMIT,
        "series_ticker": series_ticker,
    }
    groups: list[list[str] | None] = (
        [None]
        if tickers is None
        else list(chunks(list(dict.fromkeys(tickers)), TICKERS_PER_REQUEST))
    )
    for group in groups:
        params = dict(base)
        if group is not None:
            params["tickers"] = ",".join(group)
        async for items, fetched_at in _walk(client, path, "markets", params, wall):
            report = ParseReport()
            parsed = [p for p in (parse_market(i, report) for i in items) if p is not None]
            yield MarketPage(parsed, report, fetched_at)


def candles_path(ticker: str, series_ticker: str | None, historical: bool) -> str:
    """The candlestick endpoint of a live (series known) or archived market."""
    if historical:
        return f"/historical/markets/{path_segment(ticker)}/candlesticks"
    if not series_ticker:
        raise ValueError(f"market {ticker}: the live candlestick endpoint needs its series_ticker")
    return f"/series/{path_segment(series_ticker)}/markets/{path_segment(ticker)}/candlesticks"


async def fetch_candles(
    client: KalshiRestClient,
    *,
    ticker: str,
    series_ticker: str | None,
    period: int,
    start_ts: int,
    end_ts: int,
    historical: bool,
    report: ParseReport,
) -> list[ParsedCandle]:
    """Candles whose end lies in [start_ts, end_ts] (at most 5000; see candle_windows)."""
    path = candles_path(ticker, series_ticker, historical)
    params = {"start_ts": start_ts, "end_ts": end_ts, "period_interval": check_period(period)}
    body = await client.get_json(path, params)
    items = body.get("candlesticks")
    if items is None:
        return []
    if not isinstance(items, list):
        raise KalshiResponseError(f"GET {path}: 'candlesticks' is not a list")
    return [c for c in (parse_candle(i, ticker, report) for i in items) if c is not None]
