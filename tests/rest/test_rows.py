"""Row mapping of events, markets and candles from random payloads: exact, lenient, lossless."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ingestor.backfill.candle_rows import CANDLE_COLUMNS, candle_row
from ingestor.catalog.parse import ParseReport, parse_candle, parse_event, parse_market
from ingestor.catalog.rows import EVENT_COLUMNS, MARKET_COLUMNS, event_row, market_row

PRICES = (
    "yes_bid",
    "yes_ask",
    "no_bid",
    "no_ask",
    "last_price",
    "notional_value",
    "settlement_value",
)
COUNTS = ("volume", "volume_24h", "open_interest")
TIMES = ("created_time", "updated_time", "open_time", "close_time", "settlement_ts")

tickers = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.", min_size=1, max_size=30)
dollar_strings = st.decimals(min_value=0, max_value=1, places=4).map(lambda d: f"{d:.4f}")
fp_strings = st.decimals(min_value=0, max_value=10**7, places=2).map(lambda d: f"{d:.2f}")
cents = st.integers(min_value=0, max_value=100)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
junk = st.one_of(
    st.text(max_size=5),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.floats(allow_nan=True),
)


@st.composite
def market_payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {"ticker": draw(tickers)}
    for name in PRICES:
        shape = draw(st.sampled_from(["none", "dollars", "legacy", "both"]))
        if shape in ("dollars", "both"):
            payload[f"{name}_dollars"] = draw(dollar_strings)
        if shape in ("legacy", "both"):
            payload[name] = draw(cents)
    for name in COUNTS:
        shape = draw(st.sampled_from(["none", "fp", "legacy"]))
        if shape == "fp":
            payload[f"{name}_fp"] = draw(fp_strings)
        elif shape == "legacy":
            payload[name] = draw(st.integers(min_value=0, max_value=10**6))
    for name in TIMES:
        if draw(st.booleans()):
            payload[name] = draw(moments).isoformat().replace("+00:00", "Z")
    if draw(st.booleans()):
        payload["floor_strike"] = draw(
            st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda f: round(f, 4))
        )
    if draw(st.booleans()):
        payload["status"] = draw(st.sampled_from(["active", "inactive", "finalized", "open"]))
    for key in draw(st.lists(st.sampled_from(["mystery", "x_new", "zz"]), unique=True)):
        payload[key] = draw(junk)
    return payload


@given(market_payloads())
def test_market_rows_use_exact_dollars_and_fall_back_to_cents(payload: dict[str, Any]) -> None:
    report = ParseReport()
    parsed = parse_market(payload, report)
    assert parsed is not None and report.skipped == 0
    row = market_row(parsed, "EVT")
    assert set(row) == set(MARKET_COLUMNS)
    assert row["raw"] == payload and row["event_ticker"] == "EVT"
    for name in PRICES:
        got = row.get(f"{name}_dollars")
        if f"{name}_dollars" in payload:
            assert got == Decimal(payload[f"{name}_dollars"])
            assert str(got) == payload[f"{name}_dollars"]  # scale kept: exact, not a float
        elif name in payload:
            assert got == Decimal(payload[name]) / 100  # 0 stays 0, never "missing"
        elif name in (
            "yes_bid",
            "yes_ask",
            "no_bid",
            "no_ask",
            "last_price",
            "notional_value",
            "settlement_value",
        ):
            assert got is None
    for name in COUNTS:
        got = row[f"{name}_fp"]
        if f"{name}_fp" in payload:
            assert got == Decimal(payload[f"{name}_fp"])
        elif name in payload:
            assert got == Decimal(payload[name])
        else:
            assert got is None
    for name in TIMES:
        got = row[name]
        if name in payload:
            assert got == datetime.fromisoformat(payload[name].replace("Z", "+00:00"))
            assert got.tzinfo is not None
        else:
            assert got is None
    if "floor_strike" in payload:
        assert row["floor_strike"] == Decimal(repr(payload["floor_strike"]))


@given(
    base=market_payloads(),
    broken=st.dictionaries(
        st.sampled_from(
            [
                "yes_bid_dollars",
                "open_time",
                "floor_strike",
                "can_close_early",
                "price_ranges",
                "status",
            ]
        ),
        junk,
        min_size=1,
    ),
)
def test_a_bad_field_is_dropped_and_the_market_kept(
    base: dict[str, Any], broken: dict[str, Any]
) -> None:
    payload = {**base, **broken}
    report = ParseReport()
    parsed = parse_market(payload, report)
    assert parsed is not None  # the key is fine, so the market is kept
    row = market_row(parsed, "EVT")
    assert row["raw"] == payload
    for problem in report.problems:
        assert not problem.fatal
        for name in problem.fields:
            legacy = name.removesuffix("_dollars")
            if name in row and not (name.endswith("_dollars") and legacy in payload):
                assert row[name] is None  # dropped (a legacy integer may stand in for it)


@given(st.one_of(junk, st.dictionaries(st.sampled_from(["title", "ticker"]), junk)))
def test_a_market_without_a_usable_ticker_is_skipped_not_raised(payload: Any) -> None:
    report = ParseReport()
    if isinstance(payload, dict) and isinstance(payload.get("ticker"), str) and payload["ticker"]:
        return
    assert parse_market(payload, report) is None
    assert report.skipped == 1


@given(
    ticker=tickers,
    fields=st.dictionaries(
        st.sampled_from(
            [
                "series_ticker",
                "title",
                "sub_title",
                "category",
                "strike_period",
                "mutually_exclusive",
                "strike_date",
                "product_metadata",
                "novel",
            ]
        ),
        st.one_of(
            st.text(max_size=8), st.booleans(), st.none(), moments.map(lambda d: d.isoformat())
        ),
    ),
    markets=st.lists(market_payloads(), max_size=3),
)
def test_event_rows_keep_the_payload_and_parse_nested_markets(
    ticker: str, fields: dict[str, Any], markets: list[dict[str, Any]]
) -> None:
    payload = {"event_ticker": ticker, **fields, "markets": markets}
    report = ParseReport()
    parsed = parse_event(payload, report)
    assert parsed is not None
    row = event_row(parsed)
    assert set(row) == set(EVENT_COLUMNS)
    assert row["raw"] == {k: v for k, v in payload.items() if k != "markets"}
    assert [m.market.ticker for m in parsed.markets] == [m["ticker"] for m in markets]
    for name in ("title", "series_ticker", "strike_period"):
        if isinstance(fields.get(name), str):
            assert row[name] == fields[name]


ohlc_dollars = st.fixed_dictionaries(
    {},
    optional={
        k: dollar_strings for k in ("open_dollars", "low_dollars", "high_dollars", "close_dollars")
    },
)


@given(
    end=st.integers(min_value=0, max_value=4 * 10**9),
    bid=ohlc_dollars,
    price=st.fixed_dictionaries(
        {},
        optional={
            k: st.one_of(dollar_strings, st.none())
            for k in (
                "open_dollars",
                "close_dollars",
                "mean_dollars",
                "previous_dollars",
                "min_dollars",
            )
        },
    ),
    volume=fp_strings,
    novel=st.dictionaries(st.sampled_from(["alpha", "beta"]), st.integers(), max_size=2),
)
def test_candle_rows_are_exact_and_keep_unknown_fields_in_extra(
    end: int, bid: dict[str, str], price: dict[str, Any], volume: str, novel: dict[str, int]
) -> None:
    payload = {"end_period_ts": end, "yes_bid": bid, "price": price, "volume_fp": volume, **novel}
    report = ParseReport()
    parsed = parse_candle(payload, "T", report)
    assert parsed is not None
    row = dict(zip(CANDLE_COLUMNS, candle_row("T", 60, parsed), strict=True))
    assert row["end_period_ts"] == datetime.fromtimestamp(end, UTC)
    for key in ("open", "low", "high", "close"):
        want = bid.get(f"{key}_dollars")
        assert row[f"yes_bid_{key}"] == (None if want is None else Decimal(want))
    for key in ("open", "close", "mean", "previous"):
        want = price.get(f"{key}_dollars")
        assert row[f"price_{key}"] == (None if want is None else Decimal(want))
    assert row["yes_ask_open"] is None
    assert row["volume_fp"] == Decimal(volume)
    extra = row["extra"] or {}
    assert {k: extra[k] for k in novel} == novel
    if price.get("min_dollars") is not None:
        assert extra["price"]["min_dollars"] == price["min_dollars"]


def test_legacy_candle_in_cents_maps_to_dollars_without_leftovers() -> None:
    payload = {
        "end_period_ts": 3600,
        "yes_bid": {"open": 0, "low": 0, "high": 12, "close": 7},
        "price": {"open": None, "mean": 5, "previous": 48, "max": 60},
        "volume": 3,
        "open_interest": 0,
    }
    parsed = parse_candle(payload, "T", ParseReport())
    assert parsed is not None
    row = dict(zip(CANDLE_COLUMNS, candle_row("T", 60, parsed), strict=True))
    assert row["yes_bid_open"] == Decimal("0") and row["yes_bid_high"] == Decimal("0.12")
    assert row["price_mean"] == Decimal("0.05") and row["price_previous"] == Decimal("0.48")
    assert row["price_open"] is None
    assert row["volume_fp"] == Decimal(3) and row["open_interest_fp"] == Decimal(0)
    assert row["extra"] == {"price": {"max_dollars": "0.60"}}


def test_candle_with_a_bad_part_keeps_the_rest_and_the_raw_value() -> None:
    payload = {
        "end_period_ts": 60,
        "yes_bid": {"open_dollars": "nope"},
        "yes_ask": {"open_dollars": "0.5"},
    }
    report = ParseReport()
    parsed = parse_candle(payload, "T", report)
    assert parsed is not None and report.degraded == 1
    row = dict(zip(CANDLE_COLUMNS, candle_row("T", 1, parsed), strict=True))
    assert row["yes_ask_open"] == Decimal("0.5") and row["yes_bid_open"] is None
    assert row["extra"] == {"invalid": {"yes_bid": {"open_dollars": "nope"}}}
    assert parse_candle({"end_period_ts": "x"}, "T", report) is None
