"""Events and markets mapped to table rows: exact decimals, aware times, raw payload kept."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ingestor.catalog.filters import is_active_status
from ingestor.catalog.parse import ParsedEvent, ParsedMarket
from ingestor.kalshi.models import Market

EVENT_COLUMNS: tuple[str, ...] = (
    "event_ticker",
    "series_ticker",
    "title",
    "sub_title",
    "category",
    "collateral_return_type",
    "mutually_exclusive",
    "strike_date",
    "strike_period",
    "last_updated_ts",
    "product_metadata",
    "raw",
)
EVENT_JSON_COLUMNS = frozenset({"product_metadata", "raw"})

MARKET_COLUMNS: tuple[str, ...] = (
    "ticker",
    "event_ticker",
    "market_type",
    "title",
    "subtitle",
    "yes_sub_title",
    "no_sub_title",
    "status",
    "result",
    "created_time",
    "updated_time",
    "open_time",
    "close_time",
    "expected_expiration_time",
    "latest_expiration_time",
    "expiration_time",
    "settlement_ts",
    "settlement_timer_seconds",
    "can_close_early",
    "strike_type",
    "floor_strike",
    "cap_strike",
    "functional_strike",
    "custom_strike",
    "settlement_value_dollars",
    "expiration_value",
    "last_price_dollars",
    "yes_bid_dollars",
    "yes_ask_dollars",
    "no_bid_dollars",
    "no_ask_dollars",
    "volume_fp",
    "volume_24h_fp",
    "open_interest_fp",
    "notional_value_dollars",
    "rules_primary",
    "rules_secondary",
    "price_level_structure",
    "price_ranges",
    "raw",
)
MARKET_JSON_COLUMNS = frozenset({"custom_strike", "price_ranges", "raw"})

# Market fields copied to a column of the same name unchanged.
_MARKET_PLAIN = tuple(
    c
    for c in MARKET_COLUMNS
    if c not in {"ticker", "event_ticker", "functional_strike", "price_ranges", "raw"}
)

ACTIVE_COLUMNS: tuple[str, ...] = (
    "ticker",
    "event_ticker",
    "series_ticker",
    "strike_period",
    "status",
    "open_time",
    "close_time",
)


def _text(value: Any) -> str | None:
    """A text column from any JSON value (non-strings as compact JSON)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def event_row(parsed: ParsedEvent) -> dict[str, Any]:
    """The events row of a parsed event."""
    e = parsed.event
    return {
        "event_ticker": e.event_ticker,
        "series_ticker": e.series_ticker,
        "title": e.title,
        "sub_title": e.sub_title,
        "category": e.category,
        "collateral_return_type": e.collateral_return_type,
        "mutually_exclusive": e.mutually_exclusive,
        "strike_date": e.strike_date,
        "strike_period": e.strike_period,
        "last_updated_ts": e.last_updated_ts,
        "product_metadata": e.product_metadata,
        "raw": parsed.raw,
    }


def market_row(parsed: ParsedMarket, event_ticker: str) -> dict[str, Any]:
    """The markets row of a parsed market; `event_ticker` is its parent's (nesting wins)."""
    m = parsed.market
    row: dict[str, Any] = {"ticker": m.ticker, "event_ticker": event_ticker}
    for name in _MARKET_PLAIN:
        row[name] = getattr(m, name)
    row["functional_strike"] = _text(m.functional_strike)
    ranges = parsed.raw.get("price_ranges")
    row["price_ranges"] = (
        ranges if m.price_ranges is not None and isinstance(ranges, list) else None
    )
    row["raw"] = parsed.raw
    return row


@dataclass(frozen=True)
class MarketRecord:
    """A market as the role handles it: row data plus the context its parent event gives."""

    ticker: str
    event_ticker: str
    series_ticker: str | None
    strike_period: str | None  # normalised: the period the event was kept under
    status: str | None
    open_time: datetime | None
    close_time: datetime | None
    settlement_ts: datetime | None
    settlement_value_dollars: Decimal | None

    @property
    def active(self) -> bool:
        return is_active_status(self.status)

    def active_row(self) -> dict[str, Any]:
        """The active_markets row for this market."""
        return {
            "ticker": self.ticker,
            "event_ticker": self.event_ticker,
            "series_ticker": self.series_ticker,
            "strike_period": self.strike_period,
            "status": self.status,
            "open_time": self.open_time,
            "close_time": self.close_time,
        }


def market_record(
    market: Market, event_ticker: str, series_ticker: str | None, strike_period: str | None
) -> MarketRecord:
    """The role's view of a market inside its (kept) event."""
    return MarketRecord(
        ticker=market.ticker,
        event_ticker=event_ticker,
        series_ticker=series_ticker,
        strike_period=strike_period,
        status=market.status,
        open_time=market.open_time,
        close_time=market.close_time,
        settlement_ts=market.settlement_ts,
        settlement_value_dollars=market.settlement_value_dollars,
    )
