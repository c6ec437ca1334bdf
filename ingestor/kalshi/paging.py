"""Cursor paging and request-windowing rules: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

CANDLE_PERIODS = frozenset({1, 60, 1440})
MAX_CANDLES_PER_CALL = 5000
MAX_BATCH_CANDLE_TICKERS = 100
MAX_BATCH_CANDLES = 10_000


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a cursor-paged list; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None
    cursor: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def last(self) -> bool:
        return self.next_cursor is None


def next_cursor(body: Mapping[str, Any]) -> str | None:
    """The cursor to request next, or None when paging ends ("" , null or missing)."""
    cursor = body.get("cursor")
    if not isinstance(cursor, str) or not cursor:
        return None
    return cursor


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def check_period(period_interval: int) -> int:
    """Validate a candle period (minutes): Kalshi serves only 1, 60 and 1440."""
    if period_interval not in CANDLE_PERIODS:
        raise ValueError(
            f"period_interval={period_interval}: Kalshi serves only 1, 60 or 1440 minute candles"
        )
    return period_interval


def candle_windows(
    start_ts: int,
    end_ts: int,
    period_interval: int,
    max_candles: int = MAX_CANDLES_PER_CALL,
) -> list[tuple[int, int]]:
    """Split [start_ts, end_ts] (Unix s) into windows of at most `max_candles` candle ends each."""
    check_period(period_interval)
    if end_ts < start_ts:
        return []
    step = period_interval * 60
    span = step * max_candles
    windows: list[tuple[int, int]] = []
    lo = start_ts
    while lo <= end_ts:
        # candles whose END lies in [lo, hi]; period ends are multiples of `step`
        first_end = -(-lo // step) * step
        hi = min(end_ts, first_end + span - step)
        windows.append((lo, hi))
        lo = hi + 1
    return windows
