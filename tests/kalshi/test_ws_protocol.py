"""WS commands, replies and frame parsing."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestor.kalshi.errors import WSBufferOverflowError, WSMarketNotFoundError
from ingestor.kalshi.models import (
    EventLifecycleMessage,
    MarketLifecycleMessage,
    TickerMessage,
    TradeMessage,
)
from ingestor.kalshi.ws_protocol import (
    CommandBuilder,
    DataMessage,
    ErrorReply,
    MalformedFrame,
    OkReply,
    SubscribedReply,
    Ticker,
    UnsubscribedReply,
    WSStats,
    decode_frame,
    parse_frame,
    parse_ticker,
)

TICKER_FRAME = (
    '{"type":"ticker","sid":11,"msg":{"market_ticker":"FED-23DEC-T3.00","market_id":"u-1",'
    '"price_dollars":"0.4800","yes_bid_dollars":"0.0000","yes_ask_dollars":"0.5300",'
    '"yes_bid_size_fp":"100.00","yes_ask_size_fp":"25.00","last_trade_size_fp":"3.00",'
    '"volume_fp":"33896.00","open_interest_fp":"20422.00","dollar_volume":16948,'
    '"dollar_open_interest":10211,"ts":1669149841,"ts_ms":1669149841123,'
    '"time":"2022-11-22T20:44:01.123Z","brand_new":"kept"}}'
)
LEGACY_TICKER_FRAME = (
    '{"type":"ticker","sid":11,"msg":{"market_ticker":"FED-23DEC-T3.00","price":48,'
    '"yes_bid":45,"yes_ask":53,"volume":33896,"open_interest":20422,"dollar_volume":16948,'
    '"dollar_open_interest":10211,"ts":1669149841}}'
)


# ---- commands -----------------------------------------------------------------------------


def test_command_ids_count_up_from_one():
    b = CommandBuilder()
    cmds = [b.subscribe(["market_lifecycle_v2"]), b.list_subscriptions(), b.unsubscribe([3])]
    assert [c.id for c in cmds] == [1, 2, 3]


def test_subscribe_command_json():
    cmd = CommandBuilder().subscribe(["ticker"], ["A", "B"], send_initial_snapshot=True)
    assert json.loads(cmd.to_json()) == {
        "id": 1,
        "cmd": "subscribe",
        "params": {
            "channels": ["ticker"],
            "market_tickers": ["A", "B"],
            "send_initial_snapshot": True,
        },
    }
    lifecycle = json.loads(CommandBuilder().subscribe(["market_lifecycle_v2"]).to_json())
    assert "market_tickers" not in lifecycle["params"]


def test_update_subscription_command_json():
    cmd = CommandBuilder(7).update_subscription(5, "delete_markets", ["A"])
    assert json.loads(cmd.to_json()) == {
        "id": 7,
        "cmd": "update_subscription",
        "params": {"sids": [5], "market_tickers": ["A"], "action": "delete_markets"},
    }


def test_commands_refuse_ambiguous_input():
    b = CommandBuilder()
    with pytest.raises(ValueError):
        b.subscribe([])
    with pytest.raises(ValueError, match="all markets"):
        b.subscribe(["ticker"], [])
    with pytest.raises(ValueError):
        b.update_subscription(1, "add_markets", [])
    with pytest.raises(ValueError):
        b.update_subscription(1, "rename", ["A"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        b.unsubscribe([])
    with pytest.raises(ValueError):
        CommandBuilder(0)


# ---- replies ------------------------------------------------------------------------------


def test_replies_parse_into_typed_envelopes():
    sub = decode_frame('{"id":1,"type":"subscribed","msg":{"channel":"ticker","sid":5}}')
    assert isinstance(sub, SubscribedReply) and (sub.id, sub.sid, sub.channel) == (1, 5, "ticker")
    unsub = decode_frame('{"id":102,"sid":2,"seq":7,"type":"unsubscribed"}')
    assert isinstance(unsub, UnsubscribedReply) and (unsub.id, unsub.sid) == (102, 2)
    ok = decode_frame(
        '{"id":123,"sid":456,"seq":222,"type":"ok","msg":{"market_tickers":["A","B"]}}'
    )
    assert isinstance(ok, OkReply) and ok.market_tickers == ["A", "B"] and ok.sid == 456
    listing = decode_frame(
        '{"id":3,"type":"ok","msg":[{"channel":"ticker","sid":2},'
        '{"channel":"market_lifecycle_v2","sid":3}]}'
    )
    assert isinstance(listing, OkReply)
    assert [(s.channel, s.sid) for s in listing.subscriptions or []] == [
        ("ticker", 2),
        ("market_lifecycle_v2", 3),
    ]


def test_error_reply_maps_to_named_exception():
    err = decode_frame(
        '{"id":9,"type":"error","msg":{"code":16,"msg":"Market not found","market_ticker":"NOPE"}}'
    )
    assert isinstance(err, ErrorReply) and not err.terminal
    exc = err.to_exception()
    assert isinstance(exc, WSMarketNotFoundError)
    assert (exc.command_id, exc.market_ticker) == (9, "NOPE")


def test_unsolicited_terminal_error_keeps_its_sid():
    err = decode_frame('{"type":"error","sid":4,"msg":{"code":25,"msg":"overflow"}}')
    assert isinstance(err, ErrorReply) and err.terminal and err.sid == 4
    assert isinstance(err.to_exception(), WSBufferOverflowError)
    inner = decode_frame('{"id":0,"type":"error","msg":{"code":10,"msg":"x","sid":8}}')
    assert isinstance(inner, ErrorReply) and inner.sid == 8 and inner.to_exception().terminal


# ---- data frames --------------------------------------------------------------------------


def test_ticker_frame_parses_exactly():
    message = parse_frame(TICKER_FRAME, WSStats())
    assert isinstance(message, DataMessage)
    assert (message.type, message.sid, message.seq) == ("ticker", 11, None)
    t = message.body
    assert isinstance(t, Ticker)
    assert t.market_ticker == "FED-23DEC-T3.00"
    assert t.price_dollars == Decimal("0.4800")
    assert t.yes_bid_dollars == Decimal("0.0000") and t.yes_bid_dollars is not None
    assert t.volume_fp == Decimal("33896.00")
    assert t.ts == datetime(2022, 11, 22, 20, 44, 1, 123000, tzinfo=UTC)
    assert message.raw["brand_new"] == "kept"


def test_legacy_ticker_frame_reads_cents():
    message = parse_frame(LEGACY_TICKER_FRAME, WSStats())
    assert isinstance(message, DataMessage) and isinstance(message.body, Ticker)
    t = message.body
    assert (t.price_dollars, t.yes_bid_dollars, t.yes_ask_dollars) == (
        Decimal("0.48"),
        Decimal("0.45"),
        Decimal("0.53"),
    )
    assert t.volume_fp == Decimal(33896)
    assert t.ts == datetime(2022, 11, 22, 20, 44, 1, tzinfo=UTC)
    assert t.ts_ms is None


def test_other_data_frames_use_the_models():
    stats = WSStats()
    lifecycle = parse_frame(
        '{"type":"market_lifecycle_v2","sid":13,"msg":{"market_ticker":"M",'
        '"event_type":"settled","settled_ts":1}}',
        stats,
    )
    assert isinstance(lifecycle, DataMessage)
    assert isinstance(lifecycle.body, MarketLifecycleMessage)
    event = parse_frame('{"type":"event_lifecycle","sid":13,"msg":{"event_ticker":"E"}}', stats)
    assert isinstance(event, DataMessage) and isinstance(event.body, EventLifecycleMessage)
    trade = parse_frame(
        '{"type":"trade","sid":2,"msg":{"market_ticker":"M",'
        '"yes_price_dollars":"0.0100","count_fp":"1.00"}}',
        stats,
    )
    assert isinstance(trade, DataMessage) and isinstance(trade.body, TradeMessage)
    assert stats.messages_by_type == {"market_lifecycle_v2": 1, "event_lifecycle": 1, "trade": 1}
    assert stats.malformed == 0


def test_unknown_message_type_is_counted_and_passed_through(caplog):
    stats = WSStats()
    with caplog.at_level(logging.INFO, logger="ingestor.kalshi.ws_protocol"):
        message = parse_frame('{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"a":1}}', stats)
    assert isinstance(message, DataMessage)
    assert message.body is None and message.seq == 1 and message.raw == {"a": 1}
    assert stats.unknown_type == 1
    assert any("orderbook_snapshot" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1,2]",
        "null",
        '{"type":5}',
        '{"msg":{}}',
        '{"type":"ticker"}',
        '{"type":"ticker","msg":{"price_dollars":"0.1"}}',
        '{"type":"ticker","msg":{"market_ticker":"T","price_dollars":"abc"}}',
        '{"type":"ticker","msg":{"market_ticker":"T","price_dollars":"NaN"}}',
        '{"type":"ticker","msg":{"market_ticker":"T","price_dollars":true}}',
        '{"type":"ticker","msg":{"market_ticker":"T","dollar_volume":"x"}}',
        '{"type":"ticker","sid":"x","msg":{"market_ticker":"T"}}',
        '{"type":"market_lifecycle_v2","msg":{"event_type":"created"}}',
        '{"type":"error","msg":{"msg":"no code"}}',
        '{"type":"subscribed","msg":{"channel":"ticker"}}',
        "[" * 100_000,
    ],
)
def test_malformed_frames_are_counted_and_give_none(text, caplog):
    stats = WSStats()
    with caplog.at_level(logging.WARNING, logger="ingestor.kalshi.ws_protocol"):
        assert parse_frame(text, stats) is None
    assert (stats.frames, stats.malformed) == (1, 1)
    # the log line carries the frame, shortened
    assert all(len(r.getMessage()) < 500 for r in caplog.records)


def test_error_frames_are_counted_by_code():
    stats = WSStats()
    parse_frame('{"type":"error","msg":{"code":25,"msg":"x"}}', stats)
    parse_frame('{"type":"error","msg":{"code":25,"msg":"x"}}', stats)
    parse_frame('{"id":2,"type":"error","msg":{"code":6,"msg":"x"}}', stats)
    assert stats.errors_by_code == {25: 2, 6: 1}


def test_decode_frame_raises_for_garbage():
    with pytest.raises(MalformedFrame):
        decode_frame(b"\xff\xfe")


# ---- the fast ticker path agrees with the full model ----------------------------------------

prices = st.one_of(
    st.none(),
    st.decimals(min_value=0, max_value=1, places=4).map(str),
    st.decimals(min_value=0, max_value=10**9, places=2).map(str),
)
cents = st.one_of(st.none(), st.integers(0, 100))
counts = st.one_of(st.none(), st.integers(0, 10**9))


@st.composite
def ticker_msgs(draw: st.DrawFn) -> dict[str, Any]:
    msg: dict[str, Any] = {"market_ticker": draw(st.text(min_size=1, max_size=30))}
    for name in (
        "price_dollars",
        "yes_bid_dollars",
        "yes_ask_dollars",
        "no_bid_dollars",
        "yes_bid_size_fp",
        "yes_ask_size_fp",
        "last_trade_size_fp",
        "volume_fp",
        "open_interest_fp",
    ):
        if draw(st.booleans()):
            msg[name] = draw(prices)
    for name in ("price", "yes_bid", "yes_ask", "no_bid"):
        if draw(st.booleans()):
            msg[name] = draw(cents)
    for name in ("volume", "open_interest", "dollar_volume", "dollar_open_interest"):
        if draw(st.booleans()):
            msg[name] = draw(counts)
    if draw(st.booleans()):
        msg["ts"] = draw(st.integers(0, 4_000_000_000))
    if draw(st.booleans()):
        msg["ts_ms"] = draw(st.integers(0, 4_000_000_000_000))
    if draw(st.booleans()):
        msg["market_id"] = draw(st.uuids().map(str))
    msg.update(
        draw(
            st.dictionaries(
                st.sampled_from(["x", "new_field", "no_ask_dollars"]),
                st.text(max_size=5),
                max_size=2,
            )
        )
    )
    return msg


@settings(max_examples=300)
@given(ticker_msgs())
def test_fast_ticker_matches_the_pydantic_model(msg):
    fast = parse_ticker(msg)
    full = TickerMessage.model_validate(msg)
    for name in Ticker.__slots__:
        got, want = getattr(fast, name), getattr(full, name)
        assert got == want, name
        if isinstance(want, Decimal):
            assert got.as_tuple() == want.as_tuple(), name


@given(ticker_msgs())
def test_ticker_frames_round_trip_through_parse_frame(msg):
    message = parse_frame(json.dumps({"type": "ticker", "sid": 1, "msg": msg}), WSStats())
    assert isinstance(message, DataMessage)
    assert message.body == parse_ticker(msg)
