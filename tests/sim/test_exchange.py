"""The pure exchange model: determinism, world shape, lifecycle, ticks and candles."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import pytest

from ingestor.sim import Exchange, ExchangeConfig, Tick
from ingestor.sim.candles import CandleRequestError, bucket_end
from ingestor.sim.model import ACTIVE, CLOSED, DETERMINED, FINALIZED, INACTIVE, INITIALIZED
from ingestor.sim.wire import dollars, fp
from tests.sim.sim_client import START


def make(**kw: Any) -> Exchange:
    cfg: dict[str, Any] = {"seed": 3, "markets": 20, "start_ts": START, "tick_density": 2.0,
                           "history_hours": 6.0}
    cfg.update(kw)
    return Exchange(ExchangeConfig(**cfg))


def snapshot(ex: Exchange) -> str:
    markets = [ex.market_json(m) for m in ex.markets.values()]
    ticks = [tuple(t) for t in ex.emitted_ticks]
    lifecycle = [tuple(lm) for lm in ex.lifecycle_messages]
    return json.dumps([sorted(ex.events), markets, ticks, lifecycle], default=str)


def test_same_seed_gives_same_world_and_tick_sequence() -> None:
    a, b = make(), make()
    a.advance_to(START + 7200)
    b.advance_to(START + 7200)
    assert len(a.emitted_ticks) > 1000
    assert snapshot(a) == snapshot(b)


def test_different_seed_gives_different_prices() -> None:
    a, b = make(seed=3), make(seed=4)
    a.advance_to(START + 600)
    b.advance_to(START + 600)
    assert [t.yes_bid for t in a.emitted_ticks[:50]] != [t.yes_bid for t in b.emitted_ticks[:50]]


def test_advancing_in_small_steps_equals_one_big_step() -> None:
    a, b = make(), make()
    a.advance_to(START + 5400)
    t: float = START
    while t < START + 5400:
        t += 7.3
        b.advance_to(min(t, START + 5400))
    assert snapshot(a) == snapshot(b)


def test_world_has_series_frequencies_and_strike_periods() -> None:
    ex = make()
    periods = Counter(e.strike_period for e in ex.events.values())
    assert {"hour", "day", "week", "month", None} <= set(periods)
    freqs = {s.frequency for s in ex.series.values()}
    assert {"hourly", "daily", "weekly", "monthly", "one-off"} <= freqs
    one_off = [e for e in ex.events.values() if e.strike_period is None]
    assert one_off and all(e.strike_date is not None for e in one_off)
    assert len(ex.active_tickers) == 20


def test_historical_markets_settled_before_cutoff_and_are_not_live() -> None:
    ex = make()
    assert ex.historical_markets
    for m in ex.historical_markets.values():
        assert m.status == FINALIZED
        assert m.settled_ts is not None and m.settled_ts < ex.cutoff_ts
        assert m.ticker not in ex.markets
        assert m.ticks, "historical markets keep their candles"
    for m in ex.markets.values():
        assert m.settled_ts is None or m.settled_ts >= ex.cutoff_ts


def test_ticks_are_unique_per_market_and_millisecond() -> None:
    ex = make(tick_density=5000.0, markets=10)
    ex.advance_to(START + 2)
    keys = [(t.ticker, t.ts_ms) for t in ex.emitted_ticks]
    assert len(keys) > 5000
    assert len(keys) == len(set(keys))
    for m in ex.markets.values():
        assert m.tick_ms == sorted(set(m.tick_ms))


def test_only_active_markets_tick() -> None:
    ex = make()
    ex.advance_to(START + 4 * 3600)
    for t in ex.emitted_ticks:
        m = ex.markets[t.ticker]
        assert m.open_ts * 1000 <= t.ts_ms <= m.close_ts * 1000


def hourly_active(ex: Exchange) -> str:
    return next(t for t in ex.active_tickers if t.startswith("SIMBTCH-"))


def test_lifecycle_progresses_initialized_active_closed_determined_finalized() -> None:
    ex = make(lifecycle_noise=False)
    upcoming = next(m for m in ex.markets.values()
                    if m.status == INITIALIZED and m.series_ticker == "SIMBTCH")
    ex.advance_to(upcoming.open_ts - 1)
    assert upcoming.status == INITIALIZED
    ex.advance_to(upcoming.open_ts)
    assert upcoming.status == ACTIVE
    ex.advance_to(upcoming.close_ts)
    assert upcoming.status == CLOSED
    assert upcoming.result == ""
    ex.advance_to(upcoming.close_ts + upcoming.determine_delay_s)
    assert upcoming.status == DETERMINED
    assert upcoming.result in ("yes", "no")
    ex.advance_to(upcoming.close_ts + upcoming.determine_delay_s + upcoming.settle_delay_s)
    assert upcoming.status == FINALIZED
    msgs = [lm.msg for lm in ex.lifecycle_messages
            if lm.msg.get("market_ticker") == upcoming.ticker]
    assert [m["event_type"] for m in msgs] == ["determined", "settled"]
    assert msgs[0]["result"] == upcoming.result
    assert msgs[0]["settlement_value"] == ("1.0000" if upcoming.result == "yes" else "0.0000")
    assert msgs[1]["settled_ts"] == upcoming.settled_ts
    steps = [(tr.old, tr.new) for tr in ex.transitions if tr.ticker == upcoming.ticker]
    assert steps == [(INITIALIZED, ACTIVE), (ACTIVE, CLOSED), (CLOSED, DETERMINED),
                     (DETERMINED, FINALIZED)]


def test_new_events_are_listed_over_time_with_lifecycle_messages() -> None:
    ex = make(lifecycle_noise=False)
    before = set(ex.events)
    ex.advance_to(START + 3 * 3600)
    new = set(ex.events) - before
    assert any(t.startswith("SIMBTCH-") for t in new)
    event_msgs = {lm.msg["event_ticker"] for lm in ex.lifecycle_messages
                  if lm.type == "event_lifecycle"}
    assert new == event_msgs
    created = [lm.msg for lm in ex.lifecycle_messages if lm.msg.get("event_type") == "created"]
    assert created
    for msg in created:
        m = ex.markets[msg["market_ticker"]]
        assert msg["open_ts"] == m.open_ts and msg["close_ts"] == m.close_ts
        assert msg["additional_metadata"]["event_ticker"] == m.event_ticker


def test_deactivation_pauses_ticks_until_reactivated() -> None:
    ex = make(lifecycle_noise=False, tick_density=50.0)
    ticker = hourly_active(ex)
    ex.deactivate(ticker, pause_s=120)
    assert ex.markets[ticker].status == INACTIVE
    paused_at = ex.now_ms
    ex.advance_to(ex.now + 119)
    assert all(t.ticker != ticker for t in ex.emitted_ticks if t.ts_ms > paused_at)
    ex.advance_to(ex.now + 2)
    assert ex.markets[ticker].status == ACTIVE
    kinds = [(lm.msg["event_type"], lm.msg["is_deactivated"]) for lm in ex.lifecycle_messages
             if lm.msg.get("market_ticker") == ticker]
    assert kinds == [("deactivated", True), ("activated", False)]


def test_close_date_update_moves_the_close() -> None:
    ex = make(lifecycle_noise=False)
    ticker = hourly_active(ex)
    m = ex.markets[ticker]
    old_close = m.close_ts
    ex.update_close_time(ticker, old_close + 900)
    ex.advance_to(old_close + 1)
    assert m.status == ACTIVE
    ex.advance_to(old_close + 900)
    assert m.status == CLOSED
    msg = next(lm.msg for lm in ex.lifecycle_messages if lm.msg.get("market_ticker") == ticker)
    assert msg == {"market_ticker": ticker, "event_type": "close_date_updated",
                   "close_ts": old_close + 900}


def test_lifecycle_noise_produces_deactivations_and_close_changes() -> None:
    ex = make(markets=40, tick_density=0.0)
    ex.advance_to(START + 24 * 3600)
    kinds = Counter(lm.msg.get("event_type") for lm in ex.lifecycle_messages)
    assert kinds["deactivated"] > 0 and kinds["activated"] > 0
    assert kinds["close_date_updated"] > 0


def test_emit_ticks_produces_exactly_the_requested_ticks() -> None:
    ex = make(tick_density=0.0)
    tickers = ex.active_tickers[:3]
    ticks = ex.emit_ticks(7, tickers)
    assert [t.ticker for t in ticks] == [tickers[i % 3] for i in range(7)]
    assert ex.emitted_ticks == ticks
    assert ex.drain() == ticks
    with pytest.raises(ValueError, match="only active markets"):
        ex.emit_ticks(1, [next(t for t, m in ex.markets.items() if m.status == FINALIZED)])


# --------------------------------------------------------------------------- candles


def expected_candles(ticks: list[Tick], period: int) -> dict[int, dict[str, Any]]:
    """Candles computed independently from the tick list."""
    buckets: dict[int, list[Tick]] = defaultdict(list)
    for t in ticks:
        buckets[bucket_end(t.ts_ms, period)].append(t)
    out = {}
    for end, group in buckets.items():
        trades = [t.trade for t in group if t.trade is not None]
        bids = [t.yes_bid for t in group]
        asks = [t.yes_ask for t in group]
        out[end] = {
            "yes_bid": (bids[0], min(bids), max(bids), bids[-1]),
            "yes_ask": (asks[0], min(asks), max(asks), asks[-1]),
            "trades": [tr.yes_price for tr in trades],
            "volume_cc": sum(tr.count_cc for tr in trades),
            "oi_cc": group[-1].oi_cc,
        }
    return out


@pytest.mark.parametrize("period", [1, 60, 1440])
def test_candles_agree_with_ticks(period: int) -> None:
    ex = make(tick_density=3.0)
    ex.advance_to(START + 3 * 3600)
    ticker = max(ex.markets, key=lambda t: len(ex.markets[t].ticks))
    ticks = ex.markets[ticker].ticks
    start, end = START - 6 * 3600, START + 3 * 3600
    candles = ex.candles(ticker, period, start, end)
    want = {e: c for e, c in expected_candles(ticks, period).items() if start <= e <= end}
    assert [c["end_period_ts"] for c in candles] == sorted(want)
    for c in candles:
        w = want[c["end_period_ts"]]
        for side in ("yes_bid", "yes_ask"):
            got = tuple(c[side][f"{k}_dollars"] for k in ("open", "low", "high", "close"))
            assert got == tuple(dollars(v) for v in w[side])
        assert c["volume_fp"] == fp(w["volume_cc"])
        assert c["open_interest_fp"] == fp(w["oi_cc"])
        if w["trades"]:
            assert c["price"]["open_dollars"] == dollars(w["trades"][0])
            assert c["price"]["close_dollars"] == dollars(w["trades"][-1])
            assert c["price"]["high_dollars"] == dollars(max(w["trades"]))
            assert c["price"]["low_dollars"] == dollars(min(w["trades"]))
        else:
            assert set(c["price"]) == {"previous_dollars"}


def test_candles_are_sparse_and_previous_carries_last_trade() -> None:
    ex = make(tick_density=0.0)
    ticker = ex.active_tickers[0]
    m = ex.markets[ticker]
    end0 = (START // 60 + 10) * 60
    ex.advance_to(end0 - 30)
    first = ex.emit_ticks(1, [ticker])[0]
    ex.advance_to(end0 + 300 - 30)
    ex.emit_ticks(1, [ticker])
    candles = ex.candles(ticker, 1, end0 - 60, end0 + 600)
    assert [c["end_period_ts"] for c in candles] == [end0, end0 + 300]
    last_trade_before = first.price if first.volume_cc else None
    assert candles[1]["price"]["previous_dollars"] == (
        None if last_trade_before is None else dollars(last_trade_before))
    assert m.ticks[-1].ts_ms <= (end0 + 300) * 1000


def test_include_latest_before_start_prepends_a_null_candle() -> None:
    ex = make(tick_density=0.0)
    ticker = next(t for t in ex.active_tickers if ex.markets[t].book.volume_cc > 0)
    start = (START // 60 + 5) * 60 + 1
    plain = ex.candles(ticker, 1, start, start + 600)
    assert plain == []
    got = ex.candles(ticker, 1, start, start + 600, include_latest_before_start=True)
    assert len(got) == 1
    c = got[0]
    assert c["end_period_ts"] == start - 1 + 60
    assert c["yes_bid"]["close_dollars"] is None
    assert c["price"] == {"previous_dollars": dollars(ex.markets[ticker].book.last_price)}


def test_candle_request_rules() -> None:
    ex = make()
    ticker = ex.active_tickers[0]
    with pytest.raises(CandleRequestError, match="period_interval"):
        ex.candles(ticker, 5, START - 3600, START)
    start = START - START % 60
    assert isinstance(ex.candles(ticker, 1, start, start + 4999 * 60), list)
    with pytest.raises(CandleRequestError, match="max candlesticks: 5000"):
        ex.candles(ticker, 1, start, start + 5000 * 60)


def test_candle_bucket_end_is_inclusive() -> None:
    assert bucket_end(3_600_000, 60) == 3600
    assert bucket_end(3_600_001, 60) == 7200
    assert bucket_end(60_000, 1) == 60


# --------------------------------------------------------------------------- legacy shape


def test_legacy_shapes_use_integer_cents_and_counts() -> None:
    ex = make(legacy=True, tick_density=5.0)
    ex.advance_to(START + 600)
    tick = next(t for t in ex.emitted_ticks if t.trade is not None)
    msg = ex.ticker_msg(tick)
    assert msg["price"] == tick.price and msg["yes_bid"] == tick.yes_bid
    assert msg["volume"] == tick.volume_cc // 100
    assert not any(k.endswith(("_dollars", "_fp")) for k in msg)
    market = ex.market_json(ex.markets[tick.ticker])
    assert isinstance(market["yes_bid"], int) and isinstance(market["volume"], int)
    assert not any(k.endswith(("_dollars", "_fp")) for k in market)
    candle = ex.candles(tick.ticker, 60, START - 6 * 3600, START + 3600)[-1]
    assert isinstance(candle["yes_bid"]["close"], int) and isinstance(candle["volume"], int)
    assert "volume_fp" not in candle


def test_without_tick_recording_memory_stays_flat_but_ticks_still_stream() -> None:
    ex = make(record_ticks=False, tick_density=100.0)
    history = {t: len(m.ticks) for t, m in ex.markets.items()}
    ex.advance_to(START + 60)
    streamed = [t for t in ex.drain() if isinstance(t, Tick)]
    assert len(streamed) > 5000
    assert ex.emitted_ticks == []
    assert {t: len(m.ticks) for t, m in ex.markets.items()} == history
    keys = [(t.ticker, t.ts_ms) for t in streamed]
    assert len(keys) == len(set(keys))
    last = {t.ticker: t for t in streamed}
    assert all(ex.markets[k].last_tick == v for k, v in last.items())
