"""Kalshi wire shapes (REST objects and WS messages) built from the simulator's records.

Current shape: `*_dollars` strings (4 dp) and `*_fp` count strings (2 dp). Legacy shape (before
2026-03-12): integer cents and whole counts in place of every `*_dollars` / `*_fp` field.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

from ingestor.sim.model import Event, Market, Series, Tick, Trade

PRICE_RANGES = [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
SETTLEMENT_SOURCES = [{"name": "Simulated exchange", "url": "https://example.invalid/source"}]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> str:
    """Compact JSON text."""
    return _dumps(obj)


_CENTS = tuple(f"{c // 100}.{c % 100:02d}00" for c in range(101))


def dollars(cents: int) -> str:
    """Integer cents as a 4-dp dollar string: 56 -> "0.5600"."""
    if 0 <= cents <= 100:
        return _CENTS[cents]
    sign = "-" if cents < 0 else ""
    c = -cents if cents < 0 else cents
    return f"{sign}{c // 100}.{c % 100:02d}00"


def dollars_e4(v: int) -> str:
    """Ten-thousandths of a dollar as a 4-dp dollar string: 5625 -> "0.5625"."""
    return f"{v // 10000}.{v % 10000:04d}"


def fp(cc: int) -> str:
    """Hundredths of a contract as a 2-dp count string: 1050 -> "10.50"."""
    return f"{cc // 100}.{cc % 100:02d}"


@functools.lru_cache(maxsize=1 << 16)
def _rfc3339(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(ts: int | float) -> str:
    """Unix seconds as an RFC3339 UTC string with a Z suffix."""
    return _rfc3339(int(ts))


_second_cache: list[Any] = [None, ""]


def rfc3339_ms(ts_ms: int) -> str:
    """Unix milliseconds as an RFC3339 UTC string with milliseconds."""
    sec = ts_ms // 1000
    if _second_cache[0] != sec:
        _second_cache[0] = sec
        _second_cache[1] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second_cache[1]}.{ts_ms % 1000:03d}Z"


def series_json(s: Series, volume_cc: int | None = None) -> dict[str, Any]:
    """A Series object."""
    out: dict[str, Any] = {
        "ticker": s.ticker,
        "frequency": s.frequency,
        "title": s.title,
        "category": s.category,
        "tags": list(s.tags),
        "settlement_sources": SETTLEMENT_SOURCES,
        "contract_url": f"https://example.invalid/contracts/{s.ticker}.pdf",
        "contract_terms_url": f"https://example.invalid/terms/{s.ticker}.pdf",
        "product_metadata": None,
        "fee_type": "quadratic",
        "fee_multiplier": 1,
        "additional_prohibitions": [],
        "last_updated_ts": rfc3339(s.updated_ts),
        "exchange_index": 0,
    }
    if volume_cc is not None:
        out["volume_fp"] = fp(volume_cc)
    return out


def event_json(e: Event, category: str, markets: list[dict[str, Any]] | None) -> dict[str, Any]:
    """An EventData object; `markets` is set only when nesting was asked for."""
    out: dict[str, Any] = {
        "event_ticker": e.event_ticker,
        "series_ticker": e.series_ticker,
        "title": e.title,
        "sub_title": e.sub_title,
        "collateral_return_type": e.collateral_return_type,
        "mutually_exclusive": e.mutually_exclusive,
        "category": category,
        "strike_date": None if e.strike_date is None else rfc3339(e.strike_date),
        "strike_period": e.strike_period,
        "available_on_brokers": False,
        "product_metadata": None,
        "settlement_sources": SETTLEMENT_SOURCES,
        "last_updated_ts": rfc3339(e.updated_ts),
        "fee_type_override": None,
        "fee_multiplier_override": None,
        "exchange_index": 0,
    }
    if markets is not None:
        out["markets"] = markets
    return out


def market_json(m: Market, day_ago: Tick | None, legacy: bool) -> dict[str, Any]:
    """A Market object; `day_ago` is the market's last tick 24 h before now (for previous_*)."""
    b = m.book
    prev_bid = day_ago.yes_bid if day_ago else 0
    prev_ask = day_ago.yes_ask if day_ago else 0
    prev_price = day_ago.price if day_ago else 0
    volume_24h = b.volume_cc - (day_ago.volume_cc if day_ago else 0)
    determined = m.result != ""
    out: dict[str, Any] = {
        "ticker": m.ticker,
        "event_ticker": m.event_ticker,
        "market_type": "binary",
        "title": m.title,
        "subtitle": m.yes_sub_title,
        "yes_sub_title": m.yes_sub_title,
        "no_sub_title": m.no_sub_title,
        "rules_primary": m.rules_primary,
        "rules_secondary": m.rules_secondary,
        "early_close_condition": (
            "This market may close early once the outcome is known." if m.can_close_early else ""
        ),
        "is_provisional": False,
        "exchange_index": 0,
        "fractional_trading_enabled": m.fractional,
        "created_time": rfc3339(m.created_ts),
        "updated_time": rfc3339(m.updated_ts),
        "open_time": rfc3339(m.open_ts),
        "close_time": rfc3339(m.close_ts),
        "expected_expiration_time": rfc3339(m.expected_expiration_ts),
        "latest_expiration_time": rfc3339(m.latest_expiration_ts),
        "expiration_time": rfc3339(m.latest_expiration_ts),
        "settlement_timer_seconds": 300,
        "settlement_ts": None if m.settled_ts is None else rfc3339(m.settled_ts),
        "status": m.status,
        "result": m.result,
        "can_close_early": m.can_close_early,
        "expiration_value": (m.yes_sub_title if m.result == "yes" else "") if determined else "",
        "strike_type": m.strike_type,
        "floor_strike": m.floor_strike,
        "cap_strike": m.cap_strike,
        "functional_strike": None,
        "custom_strike": m.custom_strike,
        "price_level_structure": "linear_cent",
        "price_ranges": PRICE_RANGES,
    }
    settle_cents = (100 if m.result == "yes" else 0) if determined else None
    if legacy:
        out.update(
            yes_bid=b.yes_bid, yes_ask=b.yes_ask, no_bid=100 - b.yes_ask, no_ask=100 - b.yes_bid,
            last_price=b.last_price, previous_yes_bid=prev_bid, previous_yes_ask=prev_ask,
            previous_price=prev_price, volume=b.volume_cc // 100,
            volume_24h=volume_24h // 100, open_interest=b.oi_cc // 100, liquidity=0,
            notional_value=100, tick_size=1, response_price_units="usd_cent",
            settlement_value=settle_cents,
        )
    else:
        out.update(
            yes_bid_dollars=dollars(b.yes_bid), yes_ask_dollars=dollars(b.yes_ask),
            no_bid_dollars=dollars(100 - b.yes_ask), no_ask_dollars=dollars(100 - b.yes_bid),
            yes_bid_size_fp=fp(b.bid_size_cc), yes_ask_size_fp=fp(b.ask_size_cc),
            last_price_dollars=dollars(b.last_price),
            previous_yes_bid_dollars=dollars(prev_bid),
            previous_yes_ask_dollars=dollars(prev_ask),
            previous_price_dollars=dollars(prev_price),
            notional_value_dollars="1.0000", liquidity_dollars="0.0000",
            volume_fp=fp(b.volume_cc), volume_24h_fp=fp(volume_24h), open_interest_fp=fp(b.oi_cc),
            settlement_value_dollars=None if settle_cents is None else dollars(settle_cents),
        )
    return out


def ticker_msg(t: Tick, legacy: bool) -> dict[str, Any]:
    """The `msg` of a WS ticker frame."""
    if legacy:
        return {
            "market_ticker": t.ticker,
            "price": t.price,
            "yes_bid": t.yes_bid,
            "yes_ask": t.yes_ask,
            "volume": t.volume_cc // 100,
            "open_interest": t.oi_cc // 100,
            "dollar_volume": t.notional // 10000,
            "dollar_open_interest": t.oi_cc * t.price // 10000,
            "ts": t.ts_ms // 1000,
        }
    return {
        "market_ticker": t.ticker,
        "market_id": t.market_id,
        "price_dollars": dollars(t.price),
        "yes_bid_dollars": dollars(t.yes_bid),
        "yes_ask_dollars": dollars(t.yes_ask),
        "yes_bid_size_fp": fp(t.bid_size_cc),
        "yes_ask_size_fp": fp(t.ask_size_cc),
        "last_trade_size_fp": fp(t.last_trade_cc),
        "volume_fp": fp(t.volume_cc),
        "open_interest_fp": fp(t.oi_cc),
        "dollar_volume": t.notional // 10000,
        "dollar_open_interest": t.oi_cc * t.price // 10000,
        "ts": t.ts_ms // 1000,
        "ts_ms": t.ts_ms,
        "time": rfc3339_ms(t.ts_ms),
    }


def ticker_json(t: Tick, legacy: bool) -> str:
    """`dumps(ticker_msg(t, legacy))` without the dict, for the streaming hot path."""
    if legacy:
        return dumps(ticker_msg(t, True))
    ms = t.ts_ms
    return (
        f'{{"market_ticker":"{t.ticker}","market_id":"{t.market_id}",'
        f'"price_dollars":"{dollars(t.price)}","yes_bid_dollars":"{dollars(t.yes_bid)}",'
        f'"yes_ask_dollars":"{dollars(t.yes_ask)}","yes_bid_size_fp":"{fp(t.bid_size_cc)}",'
        f'"yes_ask_size_fp":"{fp(t.ask_size_cc)}","last_trade_size_fp":"{fp(t.last_trade_cc)}",'
        f'"volume_fp":"{fp(t.volume_cc)}","open_interest_fp":"{fp(t.oi_cc)}",'
        f'"dollar_volume":{t.notional // 10000},'
        f'"dollar_open_interest":{t.oi_cc * t.price // 10000},'
        f'"ts":{ms // 1000},"ts_ms":{ms},"time":"{rfc3339_ms(ms)}"}}'
    )


def _book_side(tr: Trade) -> str:
    return "ask" if tr.taker_outcome_side == "yes" else "bid"


def trade_msg(tr: Trade, legacy: bool) -> dict[str, Any]:
    """The `msg` of a WS trade frame."""
    if legacy:
        return {
            "trade_id": tr.trade_id,
            "market_ticker": tr.ticker,
            "yes_price": tr.yes_price,
            "no_price": 100 - tr.yes_price,
            "count": tr.count_cc // 100,
            "taker_side": tr.taker_outcome_side,
            "ts": tr.ts_ms // 1000,
        }
    return {
        "trade_id": tr.trade_id,
        "market_ticker": tr.ticker,
        "yes_price_dollars": dollars(tr.yes_price),
        "no_price_dollars": dollars(100 - tr.yes_price),
        "count_fp": fp(tr.count_cc),
        "taker_side": tr.taker_outcome_side,
        "taker_outcome_side": tr.taker_outcome_side,
        "taker_book_side": _book_side(tr),
        "is_block_trade": False,
        "ts": tr.ts_ms // 1000,
        "ts_ms": tr.ts_ms,
    }


def trade_rest(tr: Trade, legacy: bool) -> dict[str, Any]:
    """A trade as returned by GET /markets/trades."""
    out: dict[str, Any] = {
        "trade_id": tr.trade_id,
        "ticker": tr.ticker,
        "taker_side": tr.taker_outcome_side,
        "taker_outcome_side": tr.taker_outcome_side,
        "taker_book_side": _book_side(tr),
        "created_time": rfc3339_ms(tr.ts_ms),
        "is_block_trade": False,
    }
    if legacy:
        out.update(count=tr.count_cc // 100, yes_price=tr.yes_price, no_price=100 - tr.yes_price)
    else:
        out.update(
            count_fp=fp(tr.count_cc),
            yes_price_dollars=dollars(tr.yes_price),
            no_price_dollars=dollars(100 - tr.yes_price),
        )
    return out


def lifecycle_created(m: Market, event: Event) -> dict[str, Any]:
    """market_lifecycle_v2 `created` message."""
    return {
        "market_ticker": m.ticker,
        "event_type": "created",
        "open_ts": m.open_ts,
        "close_ts": m.close_ts,
        "exchange_index": 0,
        "price_level_structure": "linear_cent",
        "price_ranges": PRICE_RANGES,
        "additional_metadata": {
            "name": m.yes_sub_title,
            "title": m.title,
            "yes_sub_title": m.yes_sub_title,
            "no_sub_title": m.no_sub_title,
            "rules_primary": m.rules_primary,
            "rules_secondary": m.rules_secondary,
            "can_close_early": m.can_close_early,
            "event_ticker": event.event_ticker,
            "expected_expiration_ts": m.expected_expiration_ts,
            "strike_type": m.strike_type,
            "floor_strike": m.floor_strike,
            "cap_strike": m.cap_strike,
            "custom_strike": m.custom_strike,
        },
    }


def lifecycle_event(e: Event) -> dict[str, Any]:
    """`event_lifecycle` message for a newly listed event."""
    out: dict[str, Any] = {
        "event_ticker": e.event_ticker,
        "exchange_index": 0,
        "title": e.title,
        "subtitle": e.sub_title,
        "collateral_return_type": e.collateral_return_type,
        "series_ticker": e.series_ticker,
    }
    if e.strike_date is not None:
        out["strike_date"] = e.strike_date
    if e.strike_period is not None:
        out["strike_period"] = e.strike_period
    return out
