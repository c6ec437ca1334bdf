"""REST handlers of the simulated Trade API v2: routing, query validation, filters, pages."""

from __future__ import annotations

import logging
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from ingestor.sim import candles as candle_rules
from ingestor.sim import paging, wire
from ingestor.sim.exchange import Exchange
from ingestor.sim.httpmsg import HttpRequest, HttpResponse, error_body
from ingestor.sim.model import STATUS_FILTERS, Event, Market

log = logging.getLogger(__name__)

PREFIX = "/trade-api/v2"
EVENT_STATUSES = ("unopened", "open", "closed", "settled")
MAX_BATCH_TICKERS = 100
MAX_BATCH_CANDLES = 10_000


class RestError(Exception):
    """An error answered with Kalshi's nested error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> HttpResponse:
        """The HTTP response for this error."""
        return HttpResponse.json(self.status, error_body(self.code, self.message))


def _bad(message: str) -> RestError:
    return RestError(400, "invalid_parameters", message)


def _not_found(message: str) -> RestError:
    return RestError(404, "not_found", message)


class Query:
    """Typed access to query parameters with Kalshi-like 400 messages."""

    def __init__(self, raw: dict[str, list[str]]) -> None:
        self.raw = raw

    def get(self, name: str) -> str | None:
        """The last value of a parameter, or None when absent or empty."""
        values = self.raw.get(name)
        return values[-1] if values and values[-1] != "" else None

    def opt_int(
        self, name: str, default: int | None = None, *, required: bool = False,
        lo: int | None = None, hi: int | None = None,
    ) -> int | None:
        """An integer parameter, range-checked."""
        s = self.get(name)
        if s is None:
            if required:
                raise _bad(f"Query argument {name} is required")
            return default
        try:
            v = int(s)
        except ValueError:
            raise _bad(f"Query argument {name} must be an integer") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise _bad(f"Query argument {name}={v} out of range [{lo}, {hi}]")
        return v

    def req_int(self, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
        """A required integer parameter."""
        v = self.opt_int(name, required=True, lo=lo, hi=hi)
        assert v is not None
        return v

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter (true/false/1/0)."""
        s = self.get(name)
        if s is None:
            return default
        if s.lower() in ("true", "1"):
            return True
        if s.lower() in ("false", "0"):
            return False
        raise _bad(f"Query argument {name} must be true or false")

    def csv(self, name: str) -> list[str] | None:
        """A comma-separated list parameter."""
        s = self.get(name)
        if s is None:
            return None
        return [x.strip() for x in s.split(",") if x.strip()]

    def status(self, allowed: Iterable[str]) -> str | None:
        """A single status filter value."""
        s = self.get("status")
        if s is None:
            return None
        if "," in s:
            raise _bad("only one status may be given")
        if s not in allowed:
            raise _bad(f"invalid status {s!r}: expected one of {', '.join(allowed)}")
        return s


Handler = Callable[[Query, tuple[str, ...]], Any]


class RestApp:
    """Answers GET requests under /trade-api/v2 from an Exchange's current state."""

    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange
        routes: list[tuple[str, Handler]] = [
            (r"/exchange/status", self.exchange_status),
            (r"/exchange/schedule", self.exchange_schedule),
            (r"/series", self.list_series),
            (r"/series/([^/]+)", self.get_series),
            (r"/series/([^/]+)/markets/([^/]+)/candlesticks", self.market_candles),
            (r"/events", self.list_events),
            (r"/events/([^/]+)", self.get_event),
            (r"/markets", self.list_markets),
            (r"/markets/trades", self.list_trades),
            (r"/markets/candlesticks", self.batch_candles),
            (r"/markets/([^/]+)", self.get_market),
            (r"/historical/cutoff", self.historical_cutoff),
            (r"/historical/markets", self.list_historical_markets),
            (r"/historical/markets/([^/]+)", self.get_historical_market),
            (r"/historical/markets/([^/]+)/candlesticks", self.historical_candles),
        ]
        self._routes = [(re.compile(re.escape(PREFIX) + p + "/?"), h) for p, h in routes]

    def handle(self, req: HttpRequest) -> HttpResponse:
        """Route and answer one request."""
        for pattern, handler in self._routes:
            m = pattern.fullmatch(req.path)
            if m is None:
                continue
            if req.method != "GET":
                return RestError(405, "method_not_allowed", f"{req.method} not allowed").response()
            try:
                return HttpResponse.json(200, handler(Query(req.query), m.groups()))
            except RestError as exc:
                return exc.response()
            except paging.BadCursorError as exc:
                return _bad(str(exc)).response()
            except candle_rules.CandleRequestError as exc:
                return _bad(str(exc)).response()
        return _not_found(f"no route for {req.path}").response()

    # ---------------------------------------------------------------- exchange

    def exchange_status(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /exchange/status."""
        return {
            "exchange_active": True,
            "trading_active": True,
            "intra_exchange_transfers_active": True,
            "exchange_estimated_resume_time": None,
            "exchange_index_statuses": [
                {"exchange_index": 0, "description": "simulated", "exchange_active": True,
                 "trading_active": True}
            ],
        }

    def exchange_schedule(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /exchange/schedule (always open)."""
        return {"schedule": {"standard_hours": [], "maintenance_windows": []}}

    # ---------------------------------------------------------------- series

    def list_series(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /series with category, tags and include_volume."""
        category = q.get("category")
        tags = q.csv("tags")
        with_volume = q.flag("include_volume")
        out = []
        for s in sorted(self.ex.series.values(), key=lambda s: s.ticker):
            if category is not None and s.category != category:
                continue
            if tags and not set(tags) & set(s.tags):
                continue
            vol = self.ex.series_volume_cc(s.ticker) if with_volume else None
            out.append(wire.series_json(s, vol))
        return {"series": out}

    def get_series(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /series/{series_ticker}."""
        s = self.ex.series.get(args[0])
        if s is None:
            raise _not_found(f"series {args[0]} not found")
        vol = self.ex.series_volume_cc(s.ticker) if q.flag("include_volume") else None
        return {"series": wire.series_json(s, vol)}

    # ---------------------------------------------------------------- events

    def _live_markets(self, ev: Event) -> list[Market]:
        return [self.ex.markets[t] for t in ev.market_tickers if t in self.ex.markets]

    def _event_json(self, ev: Event, nested: bool) -> dict[str, Any]:
        category = self.ex.series[ev.series_ticker].category
        markets = [self.ex.market_json(m) for m in self._live_markets(ev)] if nested else None
        return wire.event_json(ev, category, markets)

    def list_events(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /events: an event matches a status if ANY of its live markets does."""
        limit = q.opt_int("limit", 200, lo=1, hi=200)
        assert limit is not None
        status = q.status(EVENT_STATUSES)
        series_ticker = q.get("series_ticker")
        tickers = q.csv("tickers")
        min_close = q.opt_int("min_close_ts")
        min_updated = q.opt_int("min_updated_ts")
        nested = q.flag("with_nested_markets")
        wanted = set(tickers) if tickers else None
        statuses = STATUS_FILTERS[status] if status else None

        def keep(ev: Event) -> bool:
            if series_ticker is not None and ev.series_ticker != series_ticker:
                return False
            if wanted is not None and ev.event_ticker not in wanted:
                return False
            if min_updated is not None and ev.updated_ts < min_updated:
                return False
            if statuses is None and min_close is None:
                return True
            live = self._live_markets(ev)
            if statuses is not None and not any(m.status in statuses for m in live):
                return False
            return min_close is None or any(m.close_ts >= min_close for m in live)

        items = [ev for ev in self.ex.events.values() if keep(ev)]
        items.sort(key=lambda ev: ev.seq)
        chosen, cursor = paging.page(items, lambda ev: ev.seq, "events", q.get("cursor"), limit)
        out: dict[str, Any] = {
            "events": [self._event_json(ev, nested) for ev in chosen],
            "cursor": cursor,
        }
        if q.flag("with_milestones"):
            out["milestones"] = []
        return out

    def get_event(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /events/{event_ticker}."""
        ev = self.ex.events.get(args[0])
        if ev is None:
            raise _not_found(f"event {args[0]} not found")
        markets = [self.ex.market_json(m) for m in self._live_markets(ev)]
        return {"event": self._event_json(ev, q.flag("with_nested_markets")), "markets": markets}

    # ---------------------------------------------------------------- markets

    def list_markets(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /markets with Kalshi's filters and filter-compatibility rules."""
        limit = q.opt_int("limit", 100, lo=0, hi=1000) or 100
        status = q.status(STATUS_FILTERS)
        created = (q.opt_int("min_created_ts"), q.opt_int("max_created_ts"))
        close = (q.opt_int("min_close_ts"), q.opt_int("max_close_ts"))
        settled = (q.opt_int("min_settled_ts"), q.opt_int("max_settled_ts"))
        min_updated = q.opt_int("min_updated_ts")
        mve = q.get("mve_filter")
        if mve is not None and mve not in ("only", "exclude"):
            raise _bad("mve_filter must be only or exclude")
        if created != (None, None) and status not in (None, "unopened", "open"):
            raise _bad("min_created_ts/max_created_ts require status unopened, open or none")
        if close != (None, None) and status not in (None, "closed"):
            raise _bad("min_close_ts/max_close_ts require status closed or none")
        if settled != (None, None) and status not in (None, "settled"):
            raise _bad("min_settled_ts/max_settled_ts require status settled or none")
        event_ticker = q.get("event_ticker")
        series_ticker = q.get("series_ticker")
        tickers = q.csv("tickers")
        if min_updated is not None:
            others = (status, event_ticker, tickers, *created, *close, *settled)
            if mve != "exclude" or any(v is not None for v in others):
                raise _bad("min_updated_ts requires mve_filter=exclude and allows only "
                           "series_ticker besides")
        if mve == "only":
            return {"markets": [], "cursor": ""}
        markets = self._filter_markets(
            self.ex.markets.values(), status=status, event_ticker=event_ticker,
            series_ticker=series_ticker, tickers=tickers, created=created, close=close,
            settled=settled, min_updated=min_updated,
        )
        chosen, cursor = paging.page(markets, lambda m: m.seq, "markets", q.get("cursor"), limit)
        return {"markets": [self.ex.market_json(m) for m in chosen], "cursor": cursor}

    @staticmethod
    def _filter_markets(
        markets: Iterable[Market], *, status: str | None = None, event_ticker: str | None = None,
        series_ticker: str | None = None, tickers: list[str] | None = None,
        created: tuple[int | None, int | None] = (None, None),
        close: tuple[int | None, int | None] = (None, None),
        settled: tuple[int | None, int | None] = (None, None),
        min_updated: int | None = None,
    ) -> list[Market]:
        statuses = STATUS_FILTERS[status] if status else None
        wanted = set(tickers) if tickers else None

        def within(v: int | None, bounds: tuple[int | None, int | None]) -> bool:
            lo, hi = bounds
            if lo is None and hi is None:
                return True
            if v is None:
                return False
            return (lo is None or v >= lo) and (hi is None or v <= hi)

        out = [
            m for m in markets
            if (statuses is None or m.status in statuses)
            and (event_ticker is None or m.event_ticker == event_ticker)
            and (series_ticker is None or m.series_ticker == series_ticker)
            and (wanted is None or m.ticker in wanted)
            and within(m.created_ts, created)
            and within(m.close_ts, close)
            and within(m.settled_ts, settled)
            and (min_updated is None or m.updated_ts >= min_updated)
        ]
        out.sort(key=lambda m: m.seq)
        return out

    def get_market(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /markets/{ticker}; archived markets are 404 here."""
        m = self.ex.markets.get(args[0])
        if m is None:
            raise _not_found(f"market {args[0]} not found")
        return {"market": self.ex.market_json(m)}

    def list_trades(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /markets/trades, newest first."""
        limit = q.opt_int("limit", 100, lo=1, hi=1000)
        assert limit is not None
        ticker = q.get("ticker")
        min_ts = q.opt_int("min_ts")
        max_ts = q.opt_int("max_ts")
        if ticker is not None:
            m = self.ex.markets.get(ticker) or self.ex.historical_markets.get(ticker)
            trades = m.trades if m is not None else []
        else:
            trades = self.ex.trades
        hi = len(trades)
        if max_ts is not None:
            hi = bisect_right(trades, (max_ts + 1) * 1000 - 1, key=lambda tr: tr.ts_ms)
        lo = 0
        if min_ts is not None:
            lo = bisect_left(trades, min_ts * 1000, key=lambda tr: tr.ts_ms)
        cursor = q.get("cursor")
        if cursor:
            hi = min(hi, paging.decode("trades", cursor))
        start = max(lo, hi - limit)
        chosen = trades[start:hi]
        chosen.reverse()
        next_cursor = paging.encode("trades", start) if start > lo else ""
        return {
            "trades": [wire.trade_rest(tr, self.ex.legacy) for tr in chosen],
            "cursor": next_cursor,
        }

    # ---------------------------------------------------------------- candles

    def _candle_query(self, q: Query) -> tuple[int, int, int, bool]:
        start = q.req_int("start_ts")
        end = q.req_int("end_ts")
        period = q.req_int("period_interval")
        return start, end, period, q.flag("include_latest_before_start")

    def _candles(self, m: Market, q: Query) -> list[dict[str, Any]]:
        start, end, period, latest = self._candle_query(q)
        return self.ex.candles(m.ticker, period, start, end, include_latest_before_start=latest)

    def market_candles(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /series/{s}/markets/{t}/candlesticks (live markets only)."""
        series_ticker, ticker = args
        m = self.ex.markets.get(ticker)
        if m is None or m.series_ticker != series_ticker:
            if ticker in self.ex.historical_markets:
                raise _not_found(f"market {ticker} is archived; use /historical/markets/"
                                 f"{ticker}/candlesticks")
            raise _not_found(f"market {ticker} not found in series {series_ticker}")
        return {"ticker": ticker, "candlesticks": self._candles(m, q)}

    def batch_candles(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /markets/candlesticks?market_tickers=A,B (<=100 tickers, <=10,000 candles)."""
        tickers = q.csv("market_tickers")
        if not tickers:
            raise _bad("Query argument market_tickers is required")
        if len(tickers) > MAX_BATCH_TICKERS:
            raise _bad(f"at most {MAX_BATCH_TICKERS} market_tickers per request")
        start, end, period, latest = self._candle_query(q)
        n = candle_rules.check_request(period, start, end)
        if n * len(tickers) > MAX_BATCH_CANDLES:
            raise _bad(f"max candlesticks: {MAX_BATCH_CANDLES}")
        out = []
        for t in tickers:
            if t in self.ex.markets:
                out.append({
                    "market_ticker": t,
                    "candlesticks": self.ex.candles(
                        t, period, start, end, include_latest_before_start=latest),
                })
        return {"markets": out}

    # ---------------------------------------------------------------- historical

    def historical_cutoff(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /historical/cutoff."""
        ts = wire.rfc3339(self.ex.cutoff_ts)
        return {
            "market_settled_ts": ts,
            "trades_created_ts": ts,
            "orders_updated_ts": ts,
            "market_positions_last_updated_ts": ts,
        }

    def list_historical_markets(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /historical/markets: markets settled before the cutoff."""
        limit = q.opt_int("limit", 100, lo=0, hi=1000) or 100
        markets = self._filter_markets(
            self.ex.historical_markets.values(), event_ticker=q.get("event_ticker"),
            series_ticker=q.get("series_ticker"), tickers=q.csv("tickers"),
            close=(q.opt_int("min_close_ts"), q.opt_int("max_close_ts")),
        )
        chosen, cursor = paging.page(
            markets, lambda m: m.seq, "historical_markets", q.get("cursor"), limit
        )
        return {"markets": [self.ex.market_json(m) for m in chosen], "cursor": cursor}

    def get_historical_market(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /historical/markets/{ticker}."""
        m = self.ex.historical_markets.get(args[0])
        if m is None:
            raise _not_found(f"historical market {args[0]} not found")
        return {"market": self.ex.market_json(m)}

    def historical_candles(self, q: Query, args: tuple[str, ...]) -> dict[str, Any]:
        """GET /historical/markets/{ticker}/candlesticks."""
        m = self.ex.historical_markets.get(args[0])
        if m is None:
            raise _not_found(f"historical market {args[0]} not found")
        return {"ticker": m.ticker, "candlesticks": self._candles(m, q)}
