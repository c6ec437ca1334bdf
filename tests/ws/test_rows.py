"""Tick and lifecycle rows: fingerprints, the payload-to-row mapping and its COPY encoding."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestor.db import ticks
from ingestor.kalshi.ws_protocol import DataMessage, Ticker, decode_frame
from ingestor.stream.fingerprint import (
    MISSING,
    canonical_json,
    canonical_text,
    canonical_texts,
    tick_fingerprint,
)
from ingestor.stream.rows import (
    Received,
    TickRow,
    UnusableTick,
    build_lifecycle,
    build_tick,
    lifecycle_key,
    quote_row,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECEIVED = Received.now(0.0, datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
PRICE_FIELDS = ("price_dollars", "yes_bid_dollars", "yes_ask_dollars")
COUNT_FIELDS = ("yes_bid_size_fp", "yes_ask_size_fp", "last_trade_size_fp", "volume_fp",
                "open_interest_fp")
LEGACY = {"price": "price_dollars", "yes_bid": "yes_bid_dollars", "yes_ask": "yes_ask_dollars",
          "volume": "volume_fp", "open_interest": "open_interest_fp"}


def _ticker(msg: dict[str, Any]) -> DataMessage:
    message = decode_frame(json.dumps({"type": "ticker", "sid": 1, "msg": msg}))
    assert isinstance(message, DataMessage)
    return message


def _row(msg: dict[str, Any]) -> tuple[ticks.QuoteRow, TickRow]:
    m = _ticker(msg)
    assert isinstance(m.body, Ticker)
    row = build_tick(m.body, m.raw, RECEIVED)
    return quote_row(m.body, row.ts_us, row.received_us), row


BASE = {
    "market_ticker": "KXBTCD-26JAN0514-T100250", "market_id": "5f0c9a8e",
    "price_dollars": "0.5600", "yes_bid_dollars": "0.5500", "yes_ask_dollars": "0.5700",
    "yes_bid_size_fp": "100.00", "yes_ask_size_fp": "12.00", "last_trade_size_fp": "1.00",
    "volume_fp": "33896.00", "open_interest_fp": "20422.00", "dollar_volume": 16948,
    "dollar_open_interest": 10211, "ts": 1767225600, "ts_ms": 1767225600123,
    "time": "2026-01-01T00:00:00.123Z",
}


def test_equal_values_in_another_scale_have_the_same_fingerprint() -> None:
    _, a = _row(BASE)
    _, b = _row({**BASE, "price_dollars": "0.56", "volume_fp": "33896"})
    assert a.fingerprint == b.fingerprint
    # a legacy frame carrying the same values (cents, whole counts) is the same tick too
    legacy = {k: v for k, v in BASE.items() if k not in ("price_dollars", "volume_fp")}
    _, c = _row({**legacy, "price": 56, "volume": 33896})
    assert c.fingerprint == a.fingerprint


def test_zero_is_a_value_not_a_missing_field() -> None:
    _, zero = _row({**BASE, "yes_bid_dollars": "0.0000"})
    _, missing = _row({k: v for k, v in BASE.items() if k != "yes_bid_dollars"})
    assert zero.fingerprint != missing.fingerprint
    assert "\t0.0000\t" in zero.line


def test_extra_keeps_unknown_fields_and_is_null_without_them() -> None:
    _, plain = _row(BASE)
    assert plain.line.rstrip("\n").endswith("\t\\N")
    _, more = _row({**BASE, "no_bid_dollars": "0.4300", "new_field": {"b": 1, "a": [1, 2]}})
    extra = more.line.rstrip("\n").rsplit("\t", 1)[1]
    assert json.loads(extra) == {"new_field": {"a": [1, 2], "b": 1}, "no_bid_dollars": "0.4300"}
    assert more.fingerprint != plain.fingerprint


def test_a_tick_without_any_time_is_unusable() -> None:
    msg = {k: v for k, v in BASE.items() if k not in ("ts", "ts_ms", "time")}
    with pytest.raises(UnusableTick, match="without ts_ms"):
        _row(msg)


def test_a_ticker_with_nul_is_unusable() -> None:
    with pytest.raises(UnusableTick):
        _row({**BASE, "market_ticker": "BAD\x00TICKER"})


def test_canonical_json_is_valid_for_jsonb() -> None:
    text = canonical_json({"z": float("nan"), "a": "nul\x00 and lone \ud800 and pair \U0001f600",
                           "b": "back\\u0000slash"})
    decoded = json.loads(text)
    assert decoded["z"] == "nan"
    assert decoded["a"] == "nul\ufffd and lone \ufffd and pair \U0001f600"
    assert decoded["b"] == "back\\u0000slash"
    assert list(decoded) == ["a", "b", "z"]


dollars = st.decimals(min_value=0, max_value=1, places=4).map(lambda d: f"{d:.4f}")
counts = st.decimals(min_value=0, max_value=10**9, places=2).map(lambda d: f"{d:.2f}")
# NUL and lone surrogates are replaced on the way to jsonb (see test_canonical_json_...).
safe_text = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.text(alphabet=safe_text, max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(alphabet=safe_text, max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def payloads(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ticker msg (current or legacy shape) and the column values it must produce."""
    ticker = draw(st.text(alphabet=safe_text, min_size=1, max_size=25))
    ts_ms = draw(st.integers(min_value=1_500_000_000_000, max_value=2_000_000_000_000))
    msg: dict[str, Any] = {"market_ticker": ticker}
    want: dict[str, Any] = {"ticker": ticker}
    legacy = draw(st.booleans())
    if legacy:
        msg["ts"] = ts_ms // 1000
        want["ts"] = EPOCH + timedelta(seconds=ts_ms // 1000)
        for old, new in LEGACY.items():
            value = draw(st.none() | st.integers(min_value=0, max_value=10**6))
            if value is not None:
                msg[old] = value
            want[new] = None if value is None else (
                Decimal(value) / 100 if new.endswith("_dollars") else Decimal(value)
            )
        for name in ("yes_bid_size_fp", "yes_ask_size_fp", "last_trade_size_fp"):
            want[name] = None
    else:
        msg["ts_ms"] = ts_ms
        want["ts"] = EPOCH + timedelta(milliseconds=ts_ms)
        for name in PRICE_FIELDS + COUNT_FIELDS:
            value = draw(st.none() | (dollars if name in PRICE_FIELDS else counts))
            if value is not None:
                msg[name] = value
            want[name] = None if value is None else Decimal(value)
    for name in ("dollar_volume", "dollar_open_interest"):
        value = draw(st.none() | st.integers(min_value=0, max_value=2**62))
        if value is not None:
            msg[name] = value
        want[name] = value
    extra = draw(st.dictionaries(st.text(alphabet="xyz_", min_size=1, max_size=6)
                                 .map(lambda k: "x_" + k), json_values, max_size=3))
    msg.update(extra)
    want["extra"] = extra or None
    return msg, want


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads())
def test_payload_to_row_round_trips_through_copy(
    role_url: Callable[[str], str], case: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    msg, want = case
    quote, row = _row(msg)
    with psycopg.connect(role_url("ws")) as conn, conn.transaction(force_rollback=True):
        result = ticks.write_ticks(conn, [row.line, row.line])
        assert (result.inserted, result.duplicates) == (1, 1)
        got = conn.execute(
            "SELECT ticker, ts, price_dollars, yes_bid_dollars, yes_ask_dollars, "
            "yes_bid_size_fp, yes_ask_size_fp, last_trade_size_fp, volume_fp, "
            "open_interest_fp, dollar_volume, dollar_open_interest, extra "
            "FROM market_ticks WHERE ticker = %s AND fingerprint = %s",
            (want["ticker"], row.fingerprint),
        ).fetchall()
    assert len(got) == 1
    names = ["ticker", "ts", *PRICE_FIELDS, *COUNT_FIELDS[:3], "volume_fp",
             "open_interest_fp", "dollar_volume", "dollar_open_interest", "extra"]
    assert dict(zip(names, got[0], strict=True)) == {n: want[n] for n in names}
    assert quote.ts == want["ts"]
    assert -(2**63) <= row.fingerprint < 2**63


@given(payloads(), st.sampled_from(["price_dollars", "volume_fp", "dollar_volume", "ts_ms"]))
def test_changing_any_value_changes_the_fingerprint(
    case: tuple[dict[str, Any], dict[str, Any]], field: str
) -> None:
    msg, _ = case
    _, row = _row(msg)
    changed = dict(msg)
    if field == "dollar_volume":
        changed[field] = (msg.get(field) or 0) + 1
    elif field == "ts_ms":
        changed = {k: v for k, v in msg.items() if k not in ("ts",)}
        changed["ts_ms"] = msg.get("ts_ms", msg.get("ts", 0) * 1000) + 1
    else:
        legacy = "ts_ms" not in msg
        old = {"price_dollars": "price", "volume_fp": "volume"}[field]
        if legacy:
            changed[old] = (msg.get(old) or 0) + 1
        else:
            changed[field] = str(Decimal(msg.get(field) or "0") + Decimal("0.01"))
    _, other = _row(changed)
    assert other.fingerprint != row.fingerprint


def test_fingerprint_ignores_extra_key_order() -> None:
    a = tick_fingerprint("T", 1, [Decimal("1")], canonical_json({"a": 1, "b": 2}))
    b = tick_fingerprint("T", 1, [Decimal("1.0")], canonical_json({"b": 2, "a": 1}))
    assert a == b


def _lifecycle(kind: str, msg: dict[str, Any]) -> DataMessage:
    message = decode_frame(json.dumps({"type": kind, "sid": 3, "msg": msg}))
    assert isinstance(message, DataMessage)
    return message


def test_lifecycle_rows_keep_the_raw_payload_and_own_times() -> None:
    settled = _lifecycle("market_lifecycle_v2", {
        "market_ticker": "M-1", "event_type": "settled", "settled_ts": 1767225600,
        "unknown": [1, 2],
    })
    row = build_lifecycle(settled, RECEIVED)
    assert row.ts == row.settled_ts == datetime(2026, 1, 1, tzinfo=UTC)
    assert json.loads(row.raw_json)["unknown"] == [1, 2]
    assert lifecycle_key(settled) == "M-1"
    again = build_lifecycle(settled, Received.now(5.0))
    assert again.fingerprint == row.fingerprint
    created = _lifecycle("event_lifecycle", {"event_ticker": "E-1", "title": "t"})
    erow = build_lifecycle(created, RECEIVED)
    assert (erow.event_ticker, erow.ts, lifecycle_key(created)) == ("E-1", RECEIVED.at, "E-1")


@given(st.lists(st.none() | st.decimals(allow_nan=False, allow_infinity=False), max_size=10))
def test_canonical_text_is_one_text_per_numeric_value(values: list[Decimal | None]) -> None:
    texts = [None if v is None else str(v) for v in values]
    fast = canonical_texts(texts)
    for value, canon in zip(values, fast, strict=True):
        if value is None:
            assert canon == MISSING
            continue
        plain = f"{value:f}"
        padded = plain + ("00" if "." in plain else ".00")
        assert canon == canonical_text(plain) == canonical_text(padded)
        assert Decimal(canon) == value
        assert "E" not in canon and not canon.endswith(".")


def test_an_exchange_time_before_1970_is_unusable() -> None:
    msg = {k: v for k, v in BASE.items() if k not in ("ts", "time")}
    with pytest.raises(UnusableTick, match="outside 1970-9999"):
        _row({**msg, "ts_ms": -1})


def test_a_repeated_untimed_lifecycle_event_is_a_new_row_but_a_duplicate_frame_is_not() -> None:
    paused = _lifecycle("market_lifecycle_v2", {
        "market_ticker": "M-1", "event_type": "deactivated", "is_deactivated": True,
    })
    first = build_lifecycle(paused, RECEIVED)
    duplicate = build_lifecycle(
        paused, Received.now(0.3, RECEIVED.at.replace(microsecond=300_000))
    )
    assert duplicate.fingerprint == first.fingerprint
    later = build_lifecycle(
        paused, Received.now(60.0, datetime(2026, 5, 1, 12, 1, tzinfo=UTC))
    )
    assert later.fingerprint != first.fingerprint
