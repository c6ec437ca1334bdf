"""What the database should hold, computed from the simulator's state and wire payloads."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ingestor.sim import Exchange
from ingestor.sim.model import STATUS_FILTERS, Event, Market


def ts(value: str | int | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value) if isinstance(value, str) else Decimal(repr(value))


def live_markets(ex: Exchange, ev: Event) -> list[Market]:
    return [ex.markets[t] for t in ev.market_tickers if t in ex.markets]


def discovered_events(
    ex: Exchange, statuses: Iterable[str] = ("open",), periods: Iterable[str] = ("hour", "day")
) -> list[Event]:
    """Events /events?status=S lists for any S, with an allowed strike period."""
    wanted = set().union(*(STATUS_FILTERS[s] for s in statuses))
    return [
        ev
        for ev in ex.events.values()
        if ev.strike_period in set(periods)
        and any(m.status in wanted for m in live_markets(ex, ev))
    ]


def market_columns(ex: Exchange, m: Market) -> dict[str, Any]:
    """The markets row expected for a simulated market, from its wire payload."""
    j = ex.market_json(m)
    legacy = "yes_bid_dollars" not in j

    def price(name: str) -> Decimal | None:
        if legacy:
            cents = j.get(name.removesuffix("_dollars"))
            return None if cents is None else Decimal(cents) / 100
        return dec(j.get(name))

    def count(name: str) -> Decimal | None:
        if legacy:
            v = j.get(name.removesuffix("_fp"))
            return None if v is None else Decimal(v)
        return dec(j.get(name))

    return {
        "ticker": m.ticker,
        "event_ticker": m.event_ticker,
        "market_type": j["market_type"],
        "title": j["title"],
        "subtitle": j["subtitle"],
        "yes_sub_title": j["yes_sub_title"],
        "no_sub_title": j["no_sub_title"],
        "status": m.status,
        "result": m.result,
        "created_time": ts(m.created_ts),
        "updated_time": ts(m.updated_ts),
        "open_time": ts(m.open_ts),
        "close_time": ts(m.close_ts),
        "expected_expiration_time": ts(m.expected_expiration_ts),
        "latest_expiration_time": ts(m.latest_expiration_ts),
        "expiration_time": ts(j["expiration_time"]),
        "settlement_ts": ts(m.settled_ts),
        "settlement_timer_seconds": j["settlement_timer_seconds"],
        "can_close_early": m.can_close_early,
        "strike_type": m.strike_type,
        "floor_strike": dec(m.floor_strike),
        "cap_strike": dec(m.cap_strike),
        "functional_strike": None,
        "custom_strike": m.custom_strike,
        "settlement_value_dollars": price("settlement_value_dollars"),
        "expiration_value": j["expiration_value"],
        "last_price_dollars": price("last_price_dollars"),
        "yes_bid_dollars": price("yes_bid_dollars"),
        "yes_ask_dollars": price("yes_ask_dollars"),
        "no_bid_dollars": price("no_bid_dollars"),
        "no_ask_dollars": price("no_ask_dollars"),
        "volume_fp": count("volume_fp"),
        "volume_24h_fp": count("volume_24h_fp"),
        "open_interest_fp": count("open_interest_fp"),
        "notional_value_dollars": price("notional_value_dollars"),
        "rules_primary": m.rules_primary,
        "rules_secondary": m.rules_secondary,
        "price_level_structure": j["price_level_structure"],
        "price_ranges": j["price_ranges"],
        "raw": j,
    }


def event_columns(ex: Exchange, ev: Event) -> dict[str, Any]:
    return {
        "event_ticker": ev.event_ticker,
        "series_ticker": ev.series_ticker,
        "title": ev.title,
        "sub_title": ev.sub_title,
        "category": ex.series[ev.series_ticker].category,
        "collateral_return_type": ev.collateral_return_type,
        "mutually_exclusive": ev.mutually_exclusive,
        "strike_date": ts(ev.strike_date),
        "strike_period": ev.strike_period,
        "last_updated_ts": ts(ev.updated_ts),
        "product_metadata": None,
    }


CANDLE_VALUE_NAMES = (
    "yes_bid_open",
    "yes_bid_low",
    "yes_bid_high",
    "yes_bid_close",
    "yes_ask_open",
    "yes_ask_low",
    "yes_ask_high",
    "yes_ask_close",
    "price_open",
    "price_low",
    "price_high",
    "price_close",
    "price_mean",
    "price_previous",
    "volume_fp",
    "open_interest_fp",
)


def candle_tuple(ticker: str, period: int, c: dict[str, Any]) -> tuple[Any, ...]:
    """A market_candles row (key + values, no extra) from a simulated candle payload."""
    legacy = "volume_fp" not in c

    def side(part: dict[str, Any] | None, names: Iterable[str]) -> list[Decimal | None]:
        out = []
        for name in names:
            if part is None:
                out.append(None)
            elif legacy:
                v = part.get(name)
                out.append(None if v is None else Decimal(v) / 100)
            else:
                out.append(dec(part.get(name + "_dollars")))
        return out

    quote = ("open", "low", "high", "close")
    return (
        ticker,
        period,
        datetime.fromtimestamp(c["end_period_ts"], UTC),
        *side(c.get("yes_bid"), quote),
        *side(c.get("yes_ask"), quote),
        *side(c.get("price"), (*quote, "mean", "previous")),
        Decimal(c["volume"]) if legacy else dec(c["volume_fp"]),
        Decimal(c["open_interest"]) if legacy else dec(c["open_interest_fp"]),
    )


def expected_candles(
    ex: Exchange,
    markets: Iterable[Market],
    periods: Iterable[int],
    now: float,
) -> list[tuple[Any, ...]]:
    """Every candle of these markets from open to min(close, now), sorted by key."""
    rows = []
    for m in markets:
        end = int(min(m.close_ts, now))
        if end < m.open_ts:
            continue
        for p in periods:
            for c in ex.candles(m.ticker, p, m.open_ts, end):
                rows.append(candle_tuple(m.ticker, p, c))
    return sorted(rows, key=lambda r: (r[0], r[1], r[2]))


CANDLES_SQL = (
    "SELECT ticker, period_minutes, end_period_ts, "
    + ", ".join(CANDLE_VALUE_NAMES)
    + " FROM market_candles ORDER BY ticker, period_minutes, end_period_ts"
)
