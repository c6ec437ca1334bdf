"""Candlesticks mapped to market_candles rows: exact Decimal dollars, unknown fields in `extra`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from ingestor.catalog.parse import ParsedCandle
from ingestor.kalshi.models import Candlestick, KalshiModel, epoch_to_datetime

CANDLE_COLUMNS: tuple[str, ...] = (
    "ticker",
    "period_minutes",
    "end_period_ts",
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
    "extra",
)
# Columns compared to decide whether an incoming candle changes the stored one.
CANDLE_VALUE_COLUMNS: tuple[str, ...] = CANDLE_COLUMNS[3:]

_QUOTE_FIELDS = ("open_dollars", "low_dollars", "high_dollars", "close_dollars")
_PRICE_FIELDS = (*_QUOTE_FIELDS, "mean_dollars", "previous_dollars")
# Known fields without a column of their own: kept in `extra`.
_PRICE_EXTRA_FIELDS = ("min_dollars", "max_dollars")

Row = tuple[Any, ...]


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _unknown(model: KalshiModel) -> dict[str, Any]:
    """Fields the model does not know, minus the legacy fields it already mapped."""
    legacy = set(type(model).LEGACY_CENTS.values()) | set(type(model).LEGACY_COUNTS.values())
    extra = model.model_extra or {}
    return {k: _json_value(v) for k, v in extra.items() if k not in legacy}


def candle_extra(parsed: ParsedCandle) -> dict[str, Any] | None:
    """Everything of a candle that has no column: unknown fields, min/max, invalid fields."""
    c = parsed.candle
    out: dict[str, Any] = _unknown(c)
    for name in ("yes_bid", "yes_ask"):
        part = getattr(c, name)
        if part is not None:
            unknown = _unknown(part)
            if unknown:
                out[name] = unknown
    if c.price is not None:
        price = _unknown(c.price)
        for name in _PRICE_EXTRA_FIELDS:
            value = getattr(c.price, name)
            if value is not None:
                price[name] = str(value)
        if price:
            out["price"] = price
    if parsed.invalid:
        out["invalid"] = _json_value(parsed.invalid)
    return out or None


def _quote(c: Candlestick, name: str, fields: tuple[str, ...]) -> list[Decimal | None]:
    part = getattr(c, name)
    if part is None:
        return [None] * len(fields)
    return [getattr(part, f) for f in fields]


def candle_row(ticker: str, period: int, parsed: ParsedCandle) -> Row:
    """One market_candles row in CANDLE_COLUMNS order (extra as a plain dict or None)."""
    c = parsed.candle
    return (
        ticker,
        period,
        epoch_to_datetime(c.end_period_ts),
        *_quote(c, "yes_bid", _QUOTE_FIELDS),
        *_quote(c, "yes_ask", _QUOTE_FIELDS),
        *_quote(c, "price", _PRICE_FIELDS),
        c.volume_fp,
        c.open_interest_fp,
        candle_extra(parsed),
    )
