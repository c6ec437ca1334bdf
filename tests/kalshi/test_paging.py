"""Cursor rule, chunking and candle windows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestor.kalshi.paging import candle_windows, check_period, chunks, next_cursor


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"cursor": "abc"}, "abc"),
        ({"cursor": ""}, None),
        ({"cursor": None}, None),
        ({}, None),
        ({"cursor": 5}, None),
    ],
)
def test_paging_ends_on_empty_null_or_missing_cursor(body, expected):
    assert next_cursor(body) == expected


def test_chunks():
    assert list(chunks(["a", "b", "c"], 2)) == [["a", "b"], ["c"]]
    assert list(chunks([], 3)) == []
    with pytest.raises(ValueError):
        list(chunks(["a"], 0))


def test_only_documented_candle_periods():
    assert check_period(60) == 60
    with pytest.raises(ValueError, match="1, 60 or 1440"):
        check_period(5)


@given(
    start=st.integers(0, 2_000_000_000),
    length=st.integers(0, 40 * 86400),
    period=st.sampled_from([1, 60, 1440]),
    max_candles=st.integers(1, 5000),
)
def test_candle_windows_cover_the_range_without_overlap_or_overflow(
    start, length, period, max_candles
):
    end = start + length
    windows = candle_windows(start, end, period, max_candles)
    assert windows[0][0] == start
    assert windows[-1][1] == end
    step = period * 60
    for (lo, hi), nxt in zip(windows, [*windows[1:], None], strict=True):
        assert lo <= hi
        if nxt is not None:
            assert nxt[0] == hi + 1
        # candle ends that are multiples of the period inside [lo, hi]
        ends = hi // step - (lo - 1) // step
        assert ends <= max_candles


def test_candle_windows_of_one_minute_hold_5000_candles():
    windows = candle_windows(0, 10_000 * 60, 1)
    assert windows[0] == (0, 4999 * 60)
    assert len(windows) == 3
    assert candle_windows(10, 5, 1) == []
