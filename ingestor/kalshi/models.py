"""Pydantic models of Kalshi REST objects and WS payloads, exact decimals, legacy fallbacks.

Rules every model follows: `*_dollars` / `*_fp` parse to Decimal exactly; a legacy integer field
(cents for prices, whole contracts for counts) is read only when its new field is absent or null;
every field except the natural key is optional; unknown fields are kept (`model_extra`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PlainValidator, model_validator

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Epoch numbers above this are milliseconds, not seconds (1e11 s is the year 5138).
_MS_THRESHOLD = 100_000_000_000


def to_decimal(value: Any) -> Decimal | None:
    """Exact Decimal from a JSON string or number; None for null or ""; errors for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        # repr() is the shortest string that round-trips, i.e. the literal that was in the JSON.
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value[:40]!r}") from None
    else:
        raise ValueError(f"expected a decimal string or number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def cents_to_dollars(value: Any) -> Decimal | None:
    """Legacy integer cents -> exact Decimal dollars (48 -> 0.48, 0 -> 0.00)."""
    cents = to_decimal(value)
    return None if cents is None else cents.scaleb(-2)


def epoch_to_datetime(value: int | float | Decimal, *, milliseconds: bool = False) -> datetime:
    """Unix seconds (or milliseconds) -> aware UTC datetime, exact to the microsecond."""
    if isinstance(value, int):
        delta = timedelta(milliseconds=value) if milliseconds else timedelta(seconds=value)
    else:
        micros = Decimal(repr(value) if isinstance(value, float) else value) * (
            1000 if milliseconds else 1_000_000
        )
        delta = timedelta(microseconds=int(micros))
    return EPOCH + delta


def to_datetime(value: Any) -> datetime | None:
    """Aware UTC datetime from RFC3339 or epoch s/ms; None for null, "" and Go's zero time."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, int | float | Decimal):
        ms = abs(value) >= _MS_THRESHOLD
        try:
            result = epoch_to_datetime(value, milliseconds=ms)
        except (OverflowError, ValueError, InvalidOperation):
            raise ValueError(f"epoch time out of range: {value!r}") from None
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.lstrip("-").isdigit():
            return to_datetime(int(text))
        try:
            result = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an RFC3339 time: {value[:40]!r}") from None
    else:
        raise ValueError(f"expected an RFC3339 string or epoch number, got {type(value).__name__}")
    if result.tzinfo is None:
        result = result.replace(tzinfo=UTC)
    if result.year <= 1:
        return None
    return result.astimezone(UTC)


Dec = Annotated[Decimal | None, PlainValidator(to_decimal)]
Time = Annotated[datetime | None, PlainValidator(to_datetime)]


def apply_legacy(data: Any, cents: Mapping[str, str], counts: Mapping[str, str]) -> Any:
    """Fill absent new fields from legacy ints: cents /100 for prices, counts as-is."""
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] | None = None
    for table, convert in ((cents, cents_to_dollars), (counts, to_decimal)):
        for new, old in table.items():
            if data.get(new) is None and data.get(old) is not None:
                if out is None:
                    out = dict(data)
                try:
                    out[new] = convert(data[old])
                except ValueError:
                    out[new] = data[old]  # let the field's own validation report it
    return data if out is None else out


class KalshiModel(BaseModel):
    """Base for Kalshi objects: unknown fields kept, legacy fields mapped."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    LEGACY_CENTS: ClassVar[Mapping[str, str]] = {}
    LEGACY_COUNTS: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _legacy_fields(cls, data: Any) -> Any:
        return apply_legacy(data, cls.LEGACY_CENTS, cls.LEGACY_COUNTS)


# ---- REST objects -------------------------------------------------------------------------


class SettlementSource(KalshiModel):
    """Where a series or event settles."""

    name: str | None = None
    url: str | None = None


class PriceRange(KalshiModel):
    """One band of a market's tick grid."""

    start: Dec = None
    end: Dec = None
    step: Dec = None


class Series(KalshiModel):
    """GET /series/{ticker}."""

    LEGACY_COUNTS: ClassVar[Mapping[str, str]] = {"volume_fp": "volume"}

    ticker: str
    frequency: str | None = None
    title: str | None = None
    category: str | None = None
    tags: list[str] | None = None
    settlement_sources: list[SettlementSource] | None = None
    contract_url: str | None = None
    contract_terms_url: str | None = None
    product_metadata: Any = None
    fee_type: str | None = None
    fee_multiplier: Dec = None
    additional_prohibitions: list[str] | None = None
    volume_fp: Dec = None
    last_updated_ts: Time = None
    exchange_index: int | None = None


MARKET_LEGACY_CENTS: Mapping[str, str] = {
    "yes_bid_dollars": "yes_bid",
    "yes_ask_dollars": "yes_ask",
    "no_bid_dollars": "no_bid",
    "no_ask_dollars": "no_ask",
    "last_price_dollars": "last_price",
    "previous_yes_bid_dollars": "previous_yes_bid",
    "previous_yes_ask_dollars": "previous_yes_ask",
    "previous_price_dollars": "previous_price",
    "notional_value_dollars": "notional_value",
    "liquidity_dollars": "liquidity",
    "settlement_value_dollars": "settlement_value",
}
MARKET_LEGACY_COUNTS: Mapping[str, str] = {
    "volume_fp": "volume",
    "volume_24h_fp": "volume_24h",
    "open_interest_fp": "open_interest",
}

# REST response status -> the filter family it belongs to (both naming families accepted).
_STATUS_FAMILY = {
    "initialized": "unopened",
    "unopened": "unopened",
    "active": "open",
    "open": "open",
    "inactive": "paused",
    "paused": "paused",
    "closed": "closed",
    "determined": "closed",
    "disputed": "closed",
    "amended": "closed",
    "finalized": "settled",
    "settled": "settled",
}


def market_status_family(status: str | None) -> str | None:
    """Map a response status to its filter value: unopened, open, paused, closed or settled."""
    if status is None:
        return None
    return _STATUS_FAMILY.get(status.lower())


class Market(KalshiModel):
    """A market as returned by /markets, /events (nested) and /historical/markets."""

    LEGACY_CENTS = MARKET_LEGACY_CENTS
    LEGACY_COUNTS = MARKET_LEGACY_COUNTS

    ticker: str
    event_ticker: str | None = None
    market_type: str | None = None
    title: str | None = None
    subtitle: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    rules_primary: str | None = None
    rules_secondary: str | None = None
    early_close_condition: str | None = None
    primary_participant_key: str | None = None
    mve_collection_ticker: str | None = None
    mve_selected_legs: list[Any] | None = None
    is_provisional: bool | None = None
    exchange_index: int | None = None
    fractional_trading_enabled: bool | None = None

    created_time: Time = None
    updated_time: Time = None
    open_time: Time = None
    close_time: Time = None
    expected_expiration_time: Time = None
    latest_expiration_time: Time = None
    expiration_time: Time = None
    settlement_timer_seconds: int | None = None
    settlement_ts: Time = None
    occurrence_datetime: Time = None
    fee_waiver_expiration_time: Time = None

    yes_bid_dollars: Dec = None
    yes_ask_dollars: Dec = None
    no_bid_dollars: Dec = None
    no_ask_dollars: Dec = None
    yes_bid_size_fp: Dec = None
    yes_ask_size_fp: Dec = None
    last_price_dollars: Dec = None
    previous_yes_bid_dollars: Dec = None
    previous_yes_ask_dollars: Dec = None
    previous_price_dollars: Dec = None
    notional_value_dollars: Dec = None
    liquidity_dollars: Dec = None

    volume_fp: Dec = None
    volume_24h_fp: Dec = None
    open_interest_fp: Dec = None

    status: str | None = None
    result: str | None = None
    can_close_early: bool | None = None
    expiration_value: str | None = None
    settlement_value_dollars: Dec = None

    strike_type: str | None = None
    floor_strike: Dec = None
    cap_strike: Dec = None
    functional_strike: Any = None
    custom_strike: Any = None

    price_level_structure: str | None = None
    price_ranges: list[PriceRange] | None = None

    @property
    def status_family(self) -> str | None:
        """`status` mapped to unopened/open/paused/closed/settled."""
        return market_status_family(self.status)


class Event(KalshiModel):
    """An event (EventData); `markets` is filled only with with_nested_markets."""

    event_ticker: str
    series_ticker: str | None = None
    title: str | None = None
    sub_title: str | None = None
    collateral_return_type: str | None = None
    mutually_exclusive: bool | None = None
    category: str | None = None
    strike_date: Time = None
    strike_period: str | None = None
    markets: list[Market] | None = None
    available_on_brokers: bool | None = None
    product_metadata: Any = None
    settlement_sources: list[SettlementSource] | None = None
    last_updated_ts: Time = None
    fee_type_override: str | None = None
    fee_multiplier_override: Dec = None
    exchange_index: int | None = None


class ExchangeStatus(KalshiModel):
    """GET /exchange/status."""

    exchange_active: bool | None = None
    trading_active: bool | None = None
    intra_exchange_transfers_active: bool | None = None
    exchange_estimated_resume_time: Time = None
    exchange_index_statuses: list[dict[str, Any]] | None = None


class HistoricalCutoff(KalshiModel):
    """GET /historical/cutoff: data settled/created before these times lives under /historical."""

    market_settled_ts: Time = None
    trades_created_ts: Time = None
    orders_updated_ts: Time = None
    market_positions_last_updated_ts: Time = None


class QuoteOHLC(KalshiModel):
    """Bid or ask OHLC of one candle, in dollars."""

    LEGACY_CENTS: ClassVar[Mapping[str, str]] = {
        "open_dollars": "open",
        "low_dollars": "low",
        "high_dollars": "high",
        "close_dollars": "close",
    }

    open_dollars: Dec = None
    low_dollars: Dec = None
    high_dollars: Dec = None
    close_dollars: Dec = None


class PriceOHLC(QuoteOHLC):
    """Trade-price OHLC of one candle; keys are omitted or null when the bucket had no trade."""

    LEGACY_CENTS: ClassVar[Mapping[str, str]] = {
        **QuoteOHLC.LEGACY_CENTS,
        "mean_dollars": "mean",
        "previous_dollars": "previous",
        "min_dollars": "min",
        "max_dollars": "max",
    }

    mean_dollars: Dec = None
    previous_dollars: Dec = None
    min_dollars: Dec = None
    max_dollars: Dec = None


class Candlestick(KalshiModel):
    """One market candle; `end_period_ts` (Unix s) is the inclusive end of the bucket."""

    LEGACY_COUNTS: ClassVar[Mapping[str, str]] = {
        "volume_fp": "volume",
        "open_interest_fp": "open_interest",
    }

    end_period_ts: int
    yes_bid: QuoteOHLC | None = None
    yes_ask: QuoteOHLC | None = None
    price: PriceOHLC | None = None
    volume_fp: Dec = None
    open_interest_fp: Dec = None

    @property
    def end_period_time(self) -> datetime:
        """`end_period_ts` as an aware datetime."""
        return epoch_to_datetime(self.end_period_ts)


class Trade(KalshiModel):
    """One public trade from GET /markets/trades."""

    LEGACY_CENTS: ClassVar[Mapping[str, str]] = {
        "yes_price_dollars": "yes_price",
        "no_price_dollars": "no_price",
    }
    LEGACY_COUNTS: ClassVar[Mapping[str, str]] = {"count_fp": "count"}

    trade_id: str | None = None
    ticker: str | None = None
    count_fp: Dec = None
    yes_price_dollars: Dec = None
    no_price_dollars: Dec = None
    taker_side: str | None = None
    taker_outcome_side: str | None = None
    taker_book_side: str | None = None
    is_block_trade: bool | None = None
    created_time: Time = None


# ---- WS payloads (the `msg` object of a data frame) ------------------------------------------


def ws_time(data: Mapping[str, Any]) -> datetime | None:
    """Message time from `ts_ms` (ms), else `ts` (s), else the deprecated RFC3339 `time`."""
    ts_ms = data.get("ts_ms")
    if ts_ms is not None and not isinstance(ts_ms, bool):
        try:
            return epoch_to_datetime(ts_ms, milliseconds=True)
        except (TypeError, ValueError, OverflowError, InvalidOperation):
            pass
    ts = data.get("ts")
    if ts is not None and not isinstance(ts, bool):
        try:
            return epoch_to_datetime(ts)
        except (TypeError, ValueError, OverflowError, InvalidOperation):
            pass
    text = data.get("time")
    if isinstance(text, str):
        try:
            return to_datetime(text)
        except ValueError:
            return None
    return None


class _TimedMessage(KalshiModel):
    """WS payload whose `ts` is derived from ts_ms / ts / time."""

    @model_validator(mode="before")
    @classmethod
    def _derive_ts(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            data["ts"] = ws_time(data)
        return data


TICKER_LEGACY_CENTS: Mapping[str, str] = {
    "price_dollars": "price",
    "yes_bid_dollars": "yes_bid",
    "yes_ask_dollars": "yes_ask",
    "no_bid_dollars": "no_bid",
}
TICKER_LEGACY_COUNTS: Mapping[str, str] = {
    "volume_fp": "volume",
    "open_interest_fp": "open_interest",
}


class TickerMessage(_TimedMessage):
    """WS `ticker` payload, fully validated (the stream uses the faster ws_protocol.Ticker)."""

    LEGACY_CENTS = TICKER_LEGACY_CENTS
    LEGACY_COUNTS = TICKER_LEGACY_COUNTS

    market_ticker: str
    market_id: str | None = None
    price_dollars: Dec = None
    yes_bid_dollars: Dec = None
    yes_ask_dollars: Dec = None
    no_bid_dollars: Dec = None
    yes_bid_size_fp: Dec = None
    yes_ask_size_fp: Dec = None
    last_trade_size_fp: Dec = None
    volume_fp: Dec = None
    open_interest_fp: Dec = None
    dollar_volume: int | None = None
    dollar_open_interest: int | None = None
    ts: datetime | None = None
    ts_ms: int | None = None


class TradeMessage(_TimedMessage):
    """WS `trade` payload."""

    LEGACY_CENTS: ClassVar[Mapping[str, str]] = {
        "yes_price_dollars": "yes_price",
        "no_price_dollars": "no_price",
    }
    LEGACY_COUNTS: ClassVar[Mapping[str, str]] = {"count_fp": "count"}

    trade_id: str | None = None
    market_ticker: str
    yes_price_dollars: Dec = None
    no_price_dollars: Dec = None
    count_fp: Dec = None
    taker_side: str | None = None
    taker_outcome_side: str | None = None
    taker_book_side: str | None = None
    is_block_trade: bool | None = None
    ts: datetime | None = None
    ts_ms: int | None = None


class LifecycleMetadata(KalshiModel):
    """`additional_metadata` of a `created` lifecycle event."""

    name: str | None = None
    title: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    rules_primary: str | None = None
    rules_secondary: str | None = None
    can_close_early: bool | None = None
    event_ticker: str | None = None
    expected_expiration_ts: int | None = None
    strike_type: str | None = None
    floor_strike: Dec = None
    cap_strike: Dec = None
    custom_strike: Any = None


def _epoch_property(value: int | None) -> datetime | None:
    return None if value is None else epoch_to_datetime(value)


class MarketLifecycleMessage(KalshiModel):
    """WS `market_lifecycle_v2` payload; `*_ts` fields are Unix seconds."""

    market_ticker: str
    event_type: str
    open_ts: int | None = None
    close_ts: int | None = None
    determination_ts: int | None = None
    settled_ts: int | None = None
    exchange_index: int | None = None
    price_level_structure: str | None = None
    price_ranges: list[PriceRange] | None = None
    additional_metadata: LifecycleMetadata | None = None
    result: str | None = None
    settlement_value: Dec = None
    is_deactivated: bool | None = None
    strike_type: str | None = None
    floor_strike: Dec = None
    cap_strike: Dec = None
    custom_strike: Any = None
    yes_sub_title: str | None = None

    @property
    def open_time(self) -> datetime | None:
        return _epoch_property(self.open_ts)

    @property
    def close_time(self) -> datetime | None:
        return _epoch_property(self.close_ts)

    @property
    def determination_time(self) -> datetime | None:
        return _epoch_property(self.determination_ts)

    @property
    def settled_time(self) -> datetime | None:
        return _epoch_property(self.settled_ts)


class EventLifecycleMessage(KalshiModel):
    """WS `event_lifecycle` payload (delivered on the market_lifecycle_v2 channel)."""

    event_ticker: str
    series_ticker: str | None = None
    title: str | None = None
    subtitle: str | None = None
    collateral_return_type: str | None = None
    exchange_index: int | None = None
    strike_date: Time = None
    strike_period: str | None = None


class EventFeeUpdateMessage(KalshiModel):
    """WS `event_fee_update` payload; overrides are null when cleared."""

    event_ticker: str
    fee_type_override: str | None = None
    fee_multiplier_override: Dec = None
