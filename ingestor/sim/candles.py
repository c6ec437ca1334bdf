"""Candlesticks aggregated from a market's tick history, in Kalshi's sparse bucket format.

A bucket with end E (Unix s, a multiple of the period) holds the ticks with
(E - period) * 1000 < ts_ms <= E * 1000. Only buckets with at least one tick are returned.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from ingestor.sim.model import Tick
from ingestor.sim.wire import dollars, dollars_e4, fp

PERIODS_MIN = (1, 60, 1440)
MAX_CANDLES = 5000


class CandleRequestError(ValueError):
    """A candlestick query Kalshi would answer with 400."""


def bucket_count(period_min: int, start_ts: int, end_ts: int) -> int:
    """How many bucket ends fall in [start_ts, end_ts]."""
    p = period_min * 60
    first = -(-start_ts // p)
    last = end_ts // p
    return max(0, last - first + 1)


def check_request(
    period_min: int, start_ts: int, end_ts: int, max_candles: int = MAX_CANDLES
) -> int:
    """Validate a query like Kalshi does; return the number of buckets it spans."""
    if period_min not in PERIODS_MIN:
        raise CandleRequestError("period_interval must be one of 1, 60, 1440")
    if end_ts < start_ts:
        raise CandleRequestError("end_ts must not be before start_ts")
    n = bucket_count(period_min, start_ts, end_ts)
    if n > max_candles:
        raise CandleRequestError(f"max candlesticks: {max_candles}")
    return n


def bucket_end(ts_ms: int, period_min: int) -> int:
    """End (Unix s) of the bucket holding a tick at ts_ms."""
    p_ms = period_min * 60_000
    return -(-ts_ms // p_ms) * period_min * 60


def build(
    ticks: Sequence[Tick],
    tick_ms: Sequence[int],
    period_min: int,
    start_ts: int,
    end_ts: int,
    *,
    legacy: bool = False,
    include_latest_before_start: bool = False,
) -> list[dict[str, Any]]:
    """Candles whose end falls in [start_ts, end_ts], from ticks sorted by ts_ms."""
    p = period_min * 60
    first_end = -(-start_ts // p) * p
    last_end = (end_ts // p) * p
    if first_end > last_end:
        return []
    i = bisect_right(tick_ms, (first_end - p) * 1000)
    stop = bisect_right(tick_ms, last_end * 1000)
    before = ticks[i - 1] if i > 0 else None
    out: list[dict[str, Any]] = []
    if (
        include_latest_before_start
        and before is not None
        and (i >= stop or bucket_end(ticks[i].ts_ms, period_min) != first_end)
    ):
        out.append(_synthetic(first_end, before, legacy))
    p_ms = p * 1000
    while i < stop:
        t0 = ticks[i]
        end = -(-t0.ts_ms // p_ms) * p
        limit = end * 1000
        previous = before.price if before is not None and before.volume_cc > 0 else None
        bo = bl = bh = t0.yes_bid
        ao = al = ah = t0.yes_ask
        po = pl = ph = pc = -1
        sum_pc = sum_c = 0
        last = t0
        while i < stop and ticks[i].ts_ms <= limit:
            t = ticks[i]
            bl = min(bl, t.yes_bid)
            bh = max(bh, t.yes_bid)
            al = min(al, t.yes_ask)
            ah = max(ah, t.yes_ask)
            tr = t.trade
            if tr is not None:
                if po < 0:
                    po = pl = ph = tr.yes_price
                pl = min(pl, tr.yes_price)
                ph = max(ph, tr.yes_price)
                pc = tr.yes_price
                sum_pc += tr.yes_price * tr.count_cc
                sum_c += tr.count_cc
            last = t
            i += 1
        out.append(
            _candle(end, (bo, bl, bh, last.yes_bid), (ao, al, ah, last.yes_ask),
                    (po, pl, ph, pc), sum_pc, sum_c, previous, last.oi_cc, legacy)
        )
        before = last
    return out


def _ohlc(v: tuple[int, int, int, int], legacy: bool) -> dict[str, Any]:
    o, lo, hi, c = v
    if legacy:
        return {"open": o, "low": lo, "high": hi, "close": c}
    return {
        "open_dollars": dollars(o),
        "low_dollars": dollars(lo),
        "high_dollars": dollars(hi),
        "close_dollars": dollars(c),
    }


def _candle(
    end: int,
    bid: tuple[int, int, int, int],
    ask: tuple[int, int, int, int],
    trade: tuple[int, int, int, int],
    sum_pc: int,
    sum_c: int,
    previous: int | None,
    oi_cc: int,
    legacy: bool,
) -> dict[str, Any]:
    price: dict[str, Any]
    if legacy:
        if sum_c:
            o, lo, hi, c = trade
            mean = (2 * sum_pc + sum_c) // (2 * sum_c)
            price = {"open": o, "low": lo, "high": hi, "close": c, "mean": mean,
                     "previous": previous}
        else:
            price = {"open": None, "low": None, "high": None, "close": None, "mean": None,
                     "previous": previous}
        return {
            "end_period_ts": end,
            "yes_bid": _ohlc(bid, True),
            "yes_ask": _ohlc(ask, True),
            "price": price,
            "volume": sum_c // 100,
            "open_interest": oi_cc // 100,
        }
    prev = None if previous is None else dollars(previous)
    if sum_c:
        o, lo, hi, c = trade
        mean_e4 = (2 * sum_pc * 100 + sum_c) // (2 * sum_c)
        price = {
            "open_dollars": dollars(o),
            "low_dollars": dollars(lo),
            "high_dollars": dollars(hi),
            "close_dollars": dollars(c),
            "mean_dollars": dollars_e4(mean_e4),
            "previous_dollars": prev,
        }
    else:
        price = {"previous_dollars": prev}
    return {
        "end_period_ts": end,
        "yes_bid": _ohlc(bid, False),
        "yes_ask": _ohlc(ask, False),
        "price": price,
        "volume_fp": fp(sum_c),
        "open_interest_fp": fp(oi_cc),
    }


def _synthetic(end: int, before: Tick, legacy: bool) -> dict[str, Any]:
    """include_latest_before_start: a bucket with null OHLC carrying the last close."""
    previous = before.price if before.volume_cc > 0 else None
    if legacy:
        nulls = {"open": None, "low": None, "high": None, "close": None}
        return {
            "end_period_ts": end,
            "yes_bid": dict(nulls),
            "yes_ask": dict(nulls),
            "price": {**nulls, "mean": None, "previous": previous},
            "volume": 0,
            "open_interest": before.oi_cc // 100,
        }
    nulls_d = {"open_dollars": None, "low_dollars": None, "high_dollars": None,
               "close_dollars": None}
    return {
        "end_period_ts": end,
        "yes_bid": dict(nulls_d),
        "yes_ask": dict(nulls_d),
        "price": {"previous_dollars": None if previous is None else dollars(previous)},
        "volume_fp": "0.00",
        "open_interest_fp": fp(before.oi_cc),
    }
