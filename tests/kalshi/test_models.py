"""Models: exact decimals, legacy fallbacks, optional fields, unknown fields kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingestor.kalshi.models import (
    MARKET_LEGACY_CENTS,
    MARKET_LEGACY_COUNTS,
    Candlestick,
    Event,
    EventLifecycleMessage,
    ExchangeStatus,
    HistoricalCutoff,
    Market,
    MarketLifecycleMessage,
    Series,
    TickerMessage,
    TradeMessage,
    cents_to_dollars,
    market_status_family,
    to_datetime,
    to_decimal,
)

# ---- strategies ---------------------------------------------------------------------------

dollar_strings = st.builds(
    lambda units, frac, dp: (
        f"{units}.{frac:0{dp}d}"[: len(str(units)) + 1 + dp] if dp else str(units)
    ),
    st.integers(0, 1000),
    st.integers(0, 999_999),
    st.integers(0, 6),
).filter(lambda s: s.count(".") <= 1)
exact_decimals = st.decimals(
    allow_nan=False,
    allow_infinity=False,
    places=None,
    min_value=Decimal("-1e9"),
    max_value=Decimal("1e9"),
)
legacy_ints = st.integers(-10_000, 10_000_000)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)


def extra_fields(known: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.text(
        st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=14
    ).filter(lambda k: k not in known)
    return st.dictionaries(keys, json_values, max_size=5)


MARKET_KNOWN = (
    set(Market.model_fields)
    | set(MARKET_LEGACY_CENTS.values())
    | set(MARKET_LEGACY_COUNTS.values())
)


@st.composite
def market_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Decimal | None]]:
    """A market dict with a random mix of new, legacy, missing and unknown fields, plus the
    Decimal each price/count field must parse to."""
    data: dict[str, Any] = {"ticker": draw(st.text(min_size=1, max_size=20))}
    expected: dict[str, Decimal | None] = {}
    for table, legacy_scale in ((MARKET_LEGACY_CENTS, -2), (MARKET_LEGACY_COUNTS, 0)):
        for new, old in table.items():
            form = draw(st.sampled_from(["new", "null", "missing", "legacy", "both"]))
            value: Decimal | None = None
            if form in ("new", "both"):
                text = draw(dollar_strings)
                data[new] = text
                value = Decimal(text)
            elif form == "null":
                data[new] = None
            if form in ("legacy", "both"):
                cents = draw(legacy_ints)
                data[old] = cents
                if form == "legacy":
                    value = Decimal(cents).scaleb(legacy_scale)
            expected[new] = value
    data.update(draw(extra_fields(MARKET_KNOWN)))
    return data, expected


# ---- properties ---------------------------------------------------------------------------


@settings(max_examples=300)
@given(market_payloads())
def test_market_prices_and_counts_parse_exactly_with_legacy_only_as_fallback(payload):
    data, expected = payload
    market = Market.model_validate(data)
    for name, value in expected.items():
        got = getattr(market, name)
        assert got == value, name
        if value is not None:
            # same digits and exponent: nothing went through float
            assert got.as_tuple() == value.as_tuple(), name


@settings(max_examples=200)
@given(extra=extra_fields(MARKET_KNOWN))
def test_unknown_fields_are_kept_verbatim(extra):
    market = Market.model_validate({"ticker": "T", **extra})
    assert market.model_extra == extra
    assert json.loads(json.dumps(market.model_dump(mode="json")))["ticker"] == "T"


@given(st.sets(st.sampled_from(sorted(set(Market.model_fields) - {"ticker"}))))
def test_every_market_field_but_the_ticker_may_be_missing(present):
    sample = Market.model_validate(SAMPLE_MARKET)
    data = {"ticker": "T"} | {k: SAMPLE_MARKET[k] for k in present if k in SAMPLE_MARKET}
    market = Market.model_validate(data)
    for name in Market.model_fields:
        if name != "ticker" and name not in data:
            assert getattr(market, name) is None, name
        elif name != "ticker":
            assert getattr(market, name) == getattr(sample, name), name


@given(exact_decimals)
def test_to_decimal_is_exact_for_strings(value):
    assert to_decimal(str(value)) == value
    assert to_decimal(str(value)).as_tuple() == value.as_tuple()


@given(st.integers(-(10**12), 10**12))
def test_cents_convert_exactly(cents):
    assert cents_to_dollars(cents) * 100 == cents
    assert cents_to_dollars(cents) == Decimal(cents) / 100


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2999, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
        ),
    )
)
def test_rfc3339_strings_become_aware_utc_datetimes(when):
    text = when.isoformat().replace("+00:00", "Z")
    parsed = to_datetime(text)
    assert parsed == when
    assert parsed.tzinfo is UTC


# ---- examples -----------------------------------------------------------------------------

SAMPLE_MARKET: dict[str, Any] = {
    "ticker": "KXHIGHNY-25JAN01-T40",
    "event_ticker": "KXHIGHNY-25JAN01",
    "market_type": "binary",
    "yes_sub_title": "40 or above",
    "open_time": "2025-01-01T05:00:00Z",
    "close_time": "2025-01-02T04:59:00Z",
    "created_time": "2024-12-30T17:00:01.123456Z",
    "settlement_timer_seconds": 300,
    "yes_bid_dollars": "0.0000",
    "yes_ask_dollars": "0.0100",
    "no_bid_dollars": "0.9900",
    "last_price_dollars": "0.5600",
    "volume_fp": "10.50",
    "open_interest_fp": "0.00",
    "status": "active",
    "result": "",
    "can_close_early": True,
    "strike_type": "greater",
    "floor_strike": 40.5,
    "cap_strike": None,
    "price_level_structure": "linear_cent",
    "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
    "custom_strike": {"Team": "X"},
    "mve_selected_legs": [],
}


def test_zero_price_is_a_price_not_missing():
    market = Market.model_validate(SAMPLE_MARKET)
    assert market.yes_bid_dollars == Decimal("0")
    assert market.yes_bid_dollars is not None
    assert market.open_interest_fp == Decimal("0.00")
    legacy = Market.model_validate({"ticker": "T", "yes_bid": 0, "volume": 0})
    assert legacy.yes_bid_dollars is not None and legacy.yes_bid_dollars == 0
    assert legacy.volume_fp is not None and legacy.volume_fp == 0


def test_sample_market_fields():
    market = Market.model_validate(SAMPLE_MARKET)
    assert market.close_time == datetime(2025, 1, 2, 4, 59, tzinfo=UTC)
    assert market.created_time == datetime(2024, 12, 30, 17, 0, 1, 123456, tzinfo=UTC)
    assert market.floor_strike == Decimal("40.5")
    assert market.cap_strike is None
    assert market.price_ranges[0].step == Decimal("0.0100")
    assert market.status_family == "open"
    assert market.result == ""


def test_legacy_market_reads_cents_and_counts():
    market = Market.model_validate(
        {
            "ticker": "FED-23DEC-T3.00",
            "yes_bid": 45,
            "yes_ask": 53,
            "last_price": 48,
            "volume": 33896,
            "open_interest": 20422,
            "settlement_value": 100,
            "tick_size": 1,
            "response_price_units": "usd_cent",
        }
    )
    assert market.yes_bid_dollars == Decimal("0.45")
    assert market.yes_ask_dollars == Decimal("0.53")
    assert market.last_price_dollars == Decimal("0.48")
    assert market.settlement_value_dollars == Decimal("1.00")
    assert market.volume_fp == Decimal(33896)
    assert market.model_extra["tick_size"] == 1
    assert market.model_extra["yes_bid"] == 45


def test_new_field_wins_over_legacy_when_both_present():
    market = Market.model_validate({"ticker": "T", "yes_bid": 45, "yes_bid_dollars": "0.4550"})
    assert market.yes_bid_dollars == Decimal("0.4550")


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", True, [1]])
def test_bad_price_values_are_errors_not_silent_nones(bad):
    with pytest.raises(ValidationError):
        Market.model_validate({"ticker": "T", "yes_bid_dollars": bad})


def test_empty_strings_and_go_zero_time_mean_missing():
    market = Market.model_validate(
        {
            "ticker": "T",
            "yes_bid_dollars": "",
            "settlement_ts": "",
            "expiration_time": "0001-01-01T00:00:00Z",
        }
    )
    assert market.yes_bid_dollars is None
    assert market.settlement_ts is None
    assert market.expiration_time is None


def test_naive_and_epoch_times_are_read_as_utc():
    assert to_datetime("2025-01-01T00:00:00") == datetime(2025, 1, 1, tzinfo=UTC)
    assert to_datetime(1_700_000_000) == datetime.fromtimestamp(1_700_000_000, UTC)
    assert to_datetime(1_700_000_000_123) == datetime.fromtimestamp(1_700_000_000.123, UTC)
    with pytest.raises(ValueError):
        to_datetime("yesterday")


@pytest.mark.parametrize(
    ("status", "family"),
    [
        ("initialized", "unopened"),
        ("active", "open"),
        ("open", "open"),
        ("inactive", "paused"),
        ("closed", "closed"),
        ("determined", "closed"),
        ("disputed", "closed"),
        ("amended", "closed"),
        ("finalized", "settled"),
        ("settled", "settled"),
        ("weird", None),
        (None, None),
    ],
)
def test_status_families(status, family):
    assert market_status_family(status) == family


def test_event_with_nested_markets():
    event = Event.model_validate(
        {
            "event_ticker": "E",
            "series_ticker": "S",
            "strike_date": None,
            "strike_period": "day",
            "mutually_exclusive": True,
            "markets": [SAMPLE_MARKET, {"ticker": "M2"}],
            "milestone": {"x": 1},
        }
    )
    assert event.series_ticker == "S"
    assert [m.ticker for m in event.markets or []] == ["KXHIGHNY-25JAN01-T40", "M2"]
    assert event.markets[0].yes_ask_dollars == Decimal("0.0100")
    assert event.model_extra == {"milestone": {"x": 1}}
    assert Event.model_validate({"event_ticker": "E"}).markets is None


def test_series_keeps_tags_and_exact_fee_multiplier():
    series = Series.model_validate(
        {
            "ticker": "KXHIGHNY",
            "frequency": "daily",
            "tags": ["Weather"],
            "fee_multiplier": 1,
            "volume": 12,
            "last_updated_ts": "2025-05-01T00:00:00Z",
        }
    )
    assert series.fee_multiplier == Decimal(1)
    assert series.volume_fp == Decimal(12)
    assert series.last_updated_ts == datetime(2025, 5, 1, tzinfo=UTC)


def test_candle_current_shape_with_sparse_price():
    candle = Candlestick.model_validate(
        {
            "end_period_ts": 1_700_000_060,
            "yes_bid": {
                "open_dollars": "0.4500",
                "low_dollars": "0.4400",
                "high_dollars": "0.4600",
                "close_dollars": "0.0000",
            },
            "price": {"previous_dollars": "0.4500"},
            "volume_fp": "0.00",
            "open_interest_fp": "12.00",
        }
    )
    assert candle.yes_bid.close_dollars == Decimal("0.0000")
    assert candle.price.previous_dollars == Decimal("0.4500")
    assert candle.price.open_dollars is None
    assert candle.yes_ask is None
    assert candle.end_period_time == datetime.fromtimestamp(1_700_000_060, UTC)


def test_candle_legacy_shape():
    candle = Candlestick.model_validate(
        {
            "end_period_ts": 60,
            "yes_ask": {"open": 50, "low": 0, "high": 99, "close": 51},
            "price": {"open": None, "close": 48, "mean": 47, "previous": 46, "min": 40},
            "volume": 7,
            "open_interest": 3,
        }
    )
    assert candle.yes_ask.low_dollars == Decimal("0.00")
    assert candle.yes_ask.high_dollars == Decimal("0.99")
    assert candle.price.open_dollars is None
    assert candle.price.close_dollars == Decimal("0.48")
    assert candle.price.min_dollars == Decimal("0.40")
    assert candle.volume_fp == 7


def test_exchange_status_and_cutoff():
    status = ExchangeStatus.model_validate(
        {"exchange_active": True, "trading_active": False, "exchange_estimated_resume_time": None}
    )
    assert status.trading_active is False
    cutoff = HistoricalCutoff.model_validate({"market_settled_ts": "2025-01-01T00:00:00Z"})
    assert cutoff.market_settled_ts == datetime(2025, 1, 1, tzinfo=UTC)
    assert cutoff.trades_created_ts is None


def test_ws_ticker_time_prefers_ts_ms_then_ts():
    msg = TickerMessage.model_validate(
        {
            "market_ticker": "T",
            "ts": 1_700_000_000,
            "ts_ms": 1_700_000_000_250,
            "price_dollars": "0.0000",
        }
    )
    assert msg.ts == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
    assert msg.price_dollars == 0
    only_s = TickerMessage.model_validate({"market_ticker": "T", "ts": 1_700_000_000})
    assert only_s.ts == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    none = TickerMessage.model_validate({"market_ticker": "T"})
    assert none.ts is None


def test_ws_trade_legacy_and_current():
    legacy = TradeMessage.model_validate(
        {"market_ticker": "T", "yes_price": 36, "no_price": 64, "count": 3, "ts": 5}
    )
    assert legacy.yes_price_dollars == Decimal("0.36")
    assert legacy.count_fp == 3
    current = TradeMessage.model_validate(
        {
            "market_ticker": "T",
            "yes_price_dollars": "0.3600",
            "count_fp": "0.50",
            "taker_outcome_side": "yes",
            "ts_ms": 1000,
        }
    )
    assert current.count_fp == Decimal("0.50")
    assert current.ts == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_lifecycle_messages():
    created = MarketLifecycleMessage.model_validate(
        {
            "market_ticker": "INXD-23SEP14-B4487",
            "event_type": "created",
            "open_ts": 1694635200,
            "close_ts": 1694721600,
            "additional_metadata": {
                "floor_strike": 4487.5,
                "event_ticker": "INXD-23SEP14",
                "new_thing": 1,
            },
        }
    )
    assert created.close_time == datetime(2023, 9, 14, 20, 0, tzinfo=UTC)
    assert created.additional_metadata.floor_strike == Decimal("4487.5")
    assert created.additional_metadata.model_extra == {"new_thing": 1}
    determined = MarketLifecycleMessage.model_validate(
        {
            "market_ticker": "M",
            "event_type": "determined",
            "result": "no",
            "settlement_value": "0.0000",
            "determination_ts": 10,
        }
    )
    assert determined.settlement_value == Decimal("0")
    assert determined.settlement_value is not None
    event = EventLifecycleMessage.model_validate(
        {
            "event_ticker": "E",
            "series_ticker": "S",
            "strike_date": 1694721600,
            "collateral_return_type": "",
        }
    )
    assert event.strike_date == datetime(2023, 9, 14, 20, 0, tzinfo=UTC)
