"""Which candle range to ask for: from the last stored candle to the close (or now), chunked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ingestor.kalshi.paging import MAX_CANDLES_PER_CALL, candle_windows, check_period


def epoch(value: datetime) -> int:
    """Unix seconds of an aware datetime (floored)."""
    return int(value.timestamp() // 1)


def first_bucket_end(start_ts: int, period: int) -> int:
    """The first candle end (a multiple of the period) at or after start_ts."""
    step = period * 60
    return -(-start_ts // step) * step


def has_bucket(start_ts: int, end_ts: int, period: int) -> bool:
    """True when some candle end falls in [start_ts, end_ts]."""
    return end_ts >= start_ts and first_bucket_end(start_ts, period) <= end_ts


@dataclass(frozen=True)
class RangeRequest:
    """Inputs that decide one market-period range; times are aware datetimes."""

    period: int
    open_time: datetime | None
    close_time: datetime | None
    now: datetime
    last_end: datetime | None = None  # newest stored end_period_ts
    fetched_through: int | None = None  # end_ts of an earlier successful fetch (this process)
    start: datetime | None = None  # explicit range (repair); wins over the stored state
    end: datetime | None = None
    force_full: bool = False
    lookback: timedelta = timedelta(hours=72)


def plan_range(req: RangeRequest) -> tuple[int, int] | None:
    """[start_ts, end_ts] still to fetch, or None when nothing can be missing.

    The end is the market's close, never later than now. The start is the explicit start,
    else one second after the newest stored candle (or an earlier fetch's end), else the
    market's open (close minus the lookback when the open time is unknown).
    """
    check_period(req.period)
    horizon = req.now if req.close_time is None else min(req.close_time, req.now)
    end = horizon if req.end is None else min(req.end, horizon)
    floor = req.open_time if req.open_time is not None else end - req.lookback
    if req.start is not None:
        start_ts = epoch(max(req.start, floor))
    elif req.force_full:
        start_ts = epoch(floor)
    else:
        marks = [epoch(req.last_end) if req.last_end is not None else None, req.fetched_through]
        known = [m for m in marks if m is not None]
        start_ts = max(known) + 1 if known else epoch(floor)
    end_ts = epoch(end)
    if not has_bucket(start_ts, end_ts, req.period):
        return None
    return start_ts, end_ts


def chunk_range(
    start_ts: int, end_ts: int, period: int, max_candles: int = MAX_CANDLES_PER_CALL
) -> list[tuple[int, int]]:
    """Calls of at most `max_candles` candle ends each, in time order."""
    return candle_windows(start_ts, end_ts, period, max_candles)
