"""Kalshi REST client: httpx.AsyncClient under trio, signed, rate-limited, retried, paged."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
import trio
from pydantic import BaseModel, ValidationError

from ingestor.kalshi.endpoints import (
    DEFAULT_REST_BASE,
    build_url,
    normalize_rest_base,
    path_segment,
    query_params,
)
from ingestor.kalshi.errors import (
    KalshiAPIError,
    KalshiError,
    KalshiPagingError,
    KalshiRateLimitError,
    KalshiResponseError,
    KalshiTransportError,
    api_error,
)
from ingestor.kalshi.models import (
    Candlestick,
    Event,
    ExchangeStatus,
    HistoricalCutoff,
    Market,
    Series,
    Trade,
)
from ingestor.kalshi.paging import (
    MAX_BATCH_CANDLE_TICKERS,
    Page,
    check_period,
    chunks,
    next_cursor,
)
from ingestor.kalshi.ratelimit import TokenBucket, default_limiter
from ingestor.kalshi.retry import RetryPolicy
from ingestor.kalshi.signing import Signer

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

Timestamp = int | datetime

# Tickers per `tickers=` query: the server's maximum is not published; keep URLs short.
DEFAULT_TICKERS_PER_REQUEST = 100
USER_AGENT = "kalshi-ingestor/0.1"


@dataclass
class RestStats:
    """Counters of one client: requests sent, retries, failures by HTTP status."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    transport_errors: int = 0
    errors_by_status: Counter[int] = field(default_factory=Counter)


def _ts(value: Timestamp | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


class KalshiRestClient:
    """Read-side Kalshi REST client; use as `async with KalshiRestClient(...) as client`."""

    def __init__(
        self,
        base_url: str = DEFAULT_REST_BASE,
        *,
        signer: Signer | None = None,
        limiter: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 15.0,
        tickers_per_request: int = DEFAULT_TICKERS_PER_REQUEST,
    ) -> None:
        self.base_url = normalize_rest_base(base_url)
        self.signer = signer
        self.limiter = limiter if limiter is not None else default_limiter()
        self.retry = retry if retry is not None else RetryPolicy()
        self.tickers_per_request = tickers_per_request
        self.stats = RestStats()
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    async def __aenter__(self) -> KalshiRestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    # ---- transport ------------------------------------------------------------------------

    async def _attempt(self, method: str, url: str) -> Any:
        await self.limiter.acquire()
        request = self._http.build_request(method, url)
        if self.signer is not None:
            request.headers.update(self.signer.headers(method, request.url.path))
        self.stats.requests += 1
        try:
            response = await self._http.send(request)
        except httpx.TimeoutException as exc:
            self.stats.transport_errors += 1
            raise KalshiTransportError(f"timeout ({type(exc).__name__})", url=url) from exc
        except httpx.TransportError as exc:
            self.stats.transport_errors += 1
            raise KalshiTransportError(f"connection failed ({exc!r})", url=url) from exc
        if response.status_code >= 400:
            self.stats.errors_by_status[response.status_code] += 1
            error = api_error(
                response.status_code,
                response.content,
                url=url,
                retry_after=response.headers.get("Retry-After"),
                reason=response.reason_phrase,
            )
            if isinstance(error, KalshiRateLimitError):
                self.stats.rate_limited += 1
                self.limiter.drain()
            raise error
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise KalshiResponseError(
                f"HTTP {response.status_code} body is not JSON url={url}: {response.text[:120]!r}"
            ) from exc

    async def request_json(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        """One API call with limiting, signing and retries; raises when retries run out."""
        url = build_url(self.base_url, path, params)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(method, url)
            except (KalshiAPIError, KalshiTransportError) as error:
                error.attempts = attempt
                if not self.retry.should_retry(error, attempt):
                    if attempt > 1 or isinstance(error, KalshiAPIError):
                        log.warning(
                            "kalshi request failed method=%s path=%s attempts=%d error=%s",
                            method,
                            path,
                            attempt,
                            error,
                        )
                    raise
                delay = self.retry.delay(error, attempt)
                self.stats.retries += 1
                log.info(
                    "kalshi request retry method=%s path=%s attempt=%d delay=%.2f error=%s",
                    method,
                    path,
                    attempt,
                    delay,
                    error,
                )
            await trio.sleep(delay)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET returning a JSON object."""
        body = await self.request_json("GET", path, params)
        if not isinstance(body, dict):
            raise KalshiResponseError(
                f"GET {path}: expected a JSON object, got {type(body).__name__}"
            )
        return body

    # ---- parsing helpers ------------------------------------------------------------------

    @staticmethod
    def _one(model: type[M], body: Mapping[str, Any], key: str, path: str) -> M:
        value = body.get(key)
        if not isinstance(value, dict):
            raise KalshiResponseError(f"GET {path}: response has no {key!r} object")
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise KalshiResponseError(f"GET {path}: bad {key!r}: {exc}") from exc

    @staticmethod
    def _many(model: type[M], body: Mapping[str, Any], key: str, path: str) -> list[M]:
        values = body.get(key)
        if values is None:
            return []
        if not isinstance(values, list):
            raise KalshiResponseError(f"GET {path}: {key!r} is not a list")
        out: list[M] = []
        for i, value in enumerate(values):
            try:
                out.append(model.model_validate(value))
            except ValidationError as exc:
                raise KalshiResponseError(f"GET {path}: bad {key}[{i}]: {exc}") from exc
        return out

    async def pages(
        self,
        path: str,
        key: str,
        model: type[M],
        params: Mapping[str, Any] | None = None,
        *,
        cursor: str | None = None,
        max_pages: int | None = None,
    ) -> AsyncIterator[Page[M]]:
        """Walk a cursor-paged list, one Page per request, from `cursor` (or the start)."""
        base = query_params(params)
        seen: set[str] = set()
        count = 0
        while True:
            query = dict(base)
            if cursor:
                query["cursor"] = cursor
            body = await self.get_json(path, query)
            page = Page(
                items=self._many(model, body, key, path),
                next_cursor=next_cursor(body),
                cursor=cursor,
                raw=body,
            )
            yield page
            count += 1
            if page.next_cursor is None or (max_pages is not None and count >= max_pages):
                return
            if page.next_cursor in seen:
                raise KalshiPagingError(f"GET {path}: cursor repeated ({page.next_cursor[:40]!r})")
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    async def _chunked_pages(
        self,
        path: str,
        key: str,
        model: type[M],
        params: dict[str, Any],
        tickers: Sequence[str] | None,
        cursor: str | None,
    ) -> AsyncIterator[Page[M]]:
        if tickers is None:
            async for page in self.pages(path, key, model, params, cursor=cursor):
                yield page
            return
        unique = list(dict.fromkeys(tickers))
        for group in chunks(unique, self.tickers_per_request):
            async for page in self.pages(path, key, model, {**params, "tickers": group}):
                yield page

    # ---- endpoints ------------------------------------------------------------------------

    async def exchange_status(self) -> ExchangeStatus:
        """GET /exchange/status."""
        body = await self.get_json("/exchange/status")
        try:
            return ExchangeStatus.model_validate(body)
        except ValidationError as exc:
            raise KalshiResponseError(f"GET /exchange/status: {exc}") from exc

    async def list_series(
        self,
        *,
        category: str | None = None,
        tags: str | None = None,
        include_product_metadata: bool | None = None,
        include_volume: bool | None = None,
        min_updated_ts: Timestamp | None = None,
    ) -> list[Series]:
        """GET /series (not paged)."""
        body = await self.get_json(
            "/series",
            {
                "category": category,
                "tags": tags,
                "include_product_metadata": include_product_metadata,
                "include_volume": include_volume,
                "min_updated_ts": _ts(min_updated_ts),
            },
        )
        return self._many(Series, body, "series", "/series")

    async def get_series(self, series_ticker: str, *, include_volume: bool | None = None) -> Series:
        """GET /series/{series_ticker}."""
        path = f"/series/{path_segment(series_ticker)}"
        body = await self.get_json(path, {"include_volume": include_volume})
        return self._one(Series, body, "series", path)

    def event_pages(
        self,
        *,
        status: str | None = None,
        series_ticker: str | None = None,
        with_nested_markets: bool = False,
        with_milestones: bool | None = None,
        min_close_ts: Timestamp | None = None,
        min_updated_ts: Timestamp | None = None,
        tickers: Sequence[str] | None = None,
        limit: int = 200,
        cursor: str | None = None,
    ) -> AsyncIterator[Page[Event]]:
        """GET /events, page by page (`tickers` are event tickers, sent in chunks)."""
        params = {
            "limit": limit,
            "status": status,
            "series_ticker": series_ticker,
            "with_nested_markets": with_nested_markets or None,
            "with_milestones": with_milestones,
            "min_close_ts": _ts(min_close_ts),
            "min_updated_ts": _ts(min_updated_ts),
        }
        return self._chunked_pages("/events", "events", Event, params, tickers, cursor)

    async def iter_events(self, **filters: Any) -> AsyncIterator[Event]:
        """Every event matching the `event_pages` filters."""
        async for page in self.event_pages(**filters):
            for event in page.items:
                yield event

    async def get_event(self, event_ticker: str, *, with_nested_markets: bool = True) -> Event:
        """GET /events/{event_ticker}; `markets` filled from the nested or top-level list."""
        path = f"/events/{path_segment(event_ticker)}"
        body = await self.get_json(path, {"with_nested_markets": with_nested_markets or None})
        event = self._one(Event, body, "event", path)
        if event.markets is None and "markets" in body:
            event.markets = self._many(Market, body, "markets", path)
        return event

    def market_pages(
        self,
        *,
        event_ticker: str | None = None,
        series_ticker: str | None = None,
        tickers: Sequence[str] | None = None,
        status: str | None = None,
        min_created_ts: Timestamp | None = None,
        max_created_ts: Timestamp | None = None,
        min_close_ts: Timestamp | None = None,
        max_close_ts: Timestamp | None = None,
        min_settled_ts: Timestamp | None = None,
        max_settled_ts: Timestamp | None = None,
        min_updated_ts: Timestamp | None = None,
        mve_filter: str | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> AsyncIterator[Page[Market]]:
        """GET /markets, page by page, with every documented filter."""
        params = {
            "limit": limit,
            "event_ticker": event_ticker,
            "series_ticker": series_ticker,
            "status": status,
            "min_created_ts": _ts(min_created_ts),
            "max_created_ts": _ts(max_created_ts),
            "min_close_ts": _ts(min_close_ts),
            "max_close_ts": _ts(max_close_ts),
            "min_settled_ts": _ts(min_settled_ts),
            "max_settled_ts": _ts(max_settled_ts),
            "min_updated_ts": _ts(min_updated_ts),
            "mve_filter": mve_filter,
        }
        return self._chunked_pages("/markets", "markets", Market, params, tickers, cursor)

    async def iter_markets(self, **filters: Any) -> AsyncIterator[Market]:
        """Every market matching the `market_pages` filters."""
        async for page in self.market_pages(**filters):
            for market in page.items:
                yield market

    async def get_market(self, ticker: str) -> Market:
        """GET /markets/{ticker}."""
        path = f"/markets/{path_segment(ticker)}"
        body = await self.get_json(path)
        return self._one(Market, body, "market", path)

    async def get_candlesticks(
        self,
        series_ticker: str,
        ticker: str,
        *,
        start_ts: Timestamp,
        end_ts: Timestamp,
        period_interval: int,
        include_latest_before_start: bool | None = None,
    ) -> list[Candlestick]:
        """GET /series/{s}/markets/{t}/candlesticks (at most 5000 candles; see candle_windows)."""
        path = f"/series/{path_segment(series_ticker)}/markets/{path_segment(ticker)}/candlesticks"
        params = self._candle_params(start_ts, end_ts, period_interval, include_latest_before_start)
        body = await self.get_json(path, params)
        return self._many(Candlestick, body, "candlesticks", path)

    async def get_batch_candlesticks(
        self,
        tickers: Sequence[str],
        *,
        start_ts: Timestamp,
        end_ts: Timestamp,
        period_interval: int,
        include_latest_before_start: bool | None = None,
    ) -> dict[str, list[Candlestick]]:
        """GET /markets/candlesticks for up to 100 tickers; market_ticker -> candles."""
        unique = list(dict.fromkeys(tickers))
        if not unique:
            return {}
        if len(unique) > MAX_BATCH_CANDLE_TICKERS:
            raise ValueError(
                f"batch candlesticks take at most {MAX_BATCH_CANDLE_TICKERS} tickers, "
                f"got {len(unique)}"
            )
        params = self._candle_params(start_ts, end_ts, period_interval, include_latest_before_start)
        params["market_tickers"] = unique
        path = "/markets/candlesticks"
        body = await self.get_json(path, params)
        markets = body.get("markets")
        if not isinstance(markets, list):
            raise KalshiResponseError(f"GET {path}: response has no 'markets' list")
        out: dict[str, list[Candlestick]] = {}
        for entry in markets:
            if not isinstance(entry, dict) or not isinstance(entry.get("market_ticker"), str):
                raise KalshiResponseError(f"GET {path}: entry without market_ticker")
            out[entry["market_ticker"]] = self._many(Candlestick, entry, "candlesticks", path)
        return out

    async def historical_cutoff(self) -> HistoricalCutoff:
        """GET /historical/cutoff."""
        body = await self.get_json("/historical/cutoff")
        try:
            return HistoricalCutoff.model_validate(body)
        except ValidationError as exc:
            raise KalshiResponseError(f"GET /historical/cutoff: {exc}") from exc

    def historical_market_pages(
        self,
        *,
        tickers: Sequence[str] | None = None,
        event_ticker: str | None = None,
        series_ticker: str | None = None,
        limit: int = 200,
        cursor: str | None = None,
        **filters: Any,
    ) -> AsyncIterator[Page[Market]]:
        """GET /historical/markets, page by page (markets settled before the cutoff)."""
        params = {
            "limit": limit,
            "event_ticker": event_ticker,
            "series_ticker": series_ticker,
            **{k: _ts(v) if isinstance(v, datetime) else v for k, v in filters.items()},
        }
        return self._chunked_pages(
            "/historical/markets", "markets", Market, params, tickers, cursor
        )

    async def iter_historical_markets(self, **filters: Any) -> AsyncIterator[Market]:
        """Every archived market matching the filters."""
        async for page in self.historical_market_pages(**filters):
            for market in page.items:
                yield market

    async def get_historical_market(self, ticker: str) -> Market:
        """GET /historical/markets/{ticker}."""
        path = f"/historical/markets/{path_segment(ticker)}"
        body = await self.get_json(path)
        return self._one(Market, body, "market", path)

    async def get_historical_candlesticks(
        self,
        ticker: str,
        *,
        start_ts: Timestamp,
        end_ts: Timestamp,
        period_interval: int,
        include_latest_before_start: bool | None = None,
    ) -> list[Candlestick]:
        """GET /historical/markets/{ticker}/candlesticks."""
        path = f"/historical/markets/{path_segment(ticker)}/candlesticks"
        params = self._candle_params(start_ts, end_ts, period_interval, include_latest_before_start)
        body = await self.get_json(path, params)
        return self._many(Candlestick, body, "candlesticks", path)

    def trade_pages(
        self,
        *,
        ticker: str | None = None,
        min_ts: Timestamp | None = None,
        max_ts: Timestamp | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> AsyncIterator[Page[Trade]]:
        """GET /markets/trades, page by page."""
        params = {"ticker": ticker, "min_ts": _ts(min_ts), "max_ts": _ts(max_ts), "limit": limit}
        return self.pages("/markets/trades", "trades", Trade, params, cursor=cursor)

    @staticmethod
    def _candle_params(
        start_ts: Timestamp,
        end_ts: Timestamp,
        period_interval: int,
        include_latest_before_start: bool | None,
    ) -> dict[str, Any]:
        start, end = _ts(start_ts), _ts(end_ts)
        assert start is not None and end is not None
        if end < start:
            raise ValueError(f"end_ts {end} is before start_ts {start}")
        return {
            "start_ts": start,
            "end_ts": end,
            "period_interval": check_period(period_interval),
            "include_latest_before_start": include_latest_before_start,
        }


def is_not_found(error: KalshiError) -> bool:
    """True for a 404 reply."""
    return isinstance(error, KalshiAPIError) and error.status == 404
