"""Which candle range a market still needs, and how it is cut into calls of <= 5000 candles."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ingestor.backfill.ranges import (
    RangeRequest,
    chunk_range,
    epoch,
    first_bucket_end,
    has_bucket,
    plan_range,
)

OPEN = datetime(2026, 1, 1, 10, tzinfo=UTC)
CLOSE = OPEN + timedelta(hours=1)


def req(**kw) -> RangeRequest:  # type: ignore[no-untyped-def]
    base = {"period": 1, "open_time": OPEN, "close_time": CLOSE, "now": CLOSE + timedelta(hours=1)}
    return RangeRequest(**{**base, **kw})


def test_first_fetch_runs_from_open_to_close() -> None:
    assert plan_range(req()) == (epoch(OPEN), epoch(CLOSE))


def test_open_market_runs_to_now() -> None:
    now = OPEN + timedelta(minutes=30, seconds=20)
    assert plan_range(req(now=now)) == (epoch(OPEN), epoch(now))


def test_next_fetch_starts_after_the_newest_stored_candle() -> None:
    last = OPEN + timedelta(minutes=42)
    assert plan_range(req(last_end=last)) == (epoch(last) + 1, epoch(CLOSE))


def test_nothing_when_the_last_bucket_is_stored() -> None:
    assert plan_range(req(last_end=CLOSE)) is None
    assert plan_range(req(period=60, last_end=CLOSE)) is None


def test_sparse_tail_is_not_asked_again_after_a_fetch_through_close() -> None:
    last = CLOSE - timedelta(minutes=5)
    assert plan_range(req(last_end=last)) is not None
    assert plan_range(req(last_end=last, fetched_through=epoch(CLOSE))) is None


def test_no_bucket_end_inside_means_no_call() -> None:
    # an hourly market checked for daily candles: no day boundary in (open, close]
    assert plan_range(req(period=1440)) is None
    assert not has_bucket(100, 50, 1)
    assert first_bucket_end(61, 1) == 120


def test_explicit_range_is_clipped_to_the_market() -> None:
    got = plan_range(
        req(start=OPEN - timedelta(hours=3), end=CLOSE + timedelta(hours=3), last_end=CLOSE)
    )
    assert got == (epoch(OPEN), epoch(CLOSE))


def test_force_full_ignores_stored_candles() -> None:
    assert plan_range(req(last_end=CLOSE, force_full=True)) == (epoch(OPEN), epoch(CLOSE))


def test_unknown_open_time_uses_the_lookback() -> None:
    got = plan_range(req(open_time=None, lookback=timedelta(hours=2)))
    assert got == (epoch(CLOSE - timedelta(hours=2)), epoch(CLOSE))


@given(
    start=st.integers(min_value=0, max_value=10**9),
    span=st.integers(min_value=0, max_value=60 * 60 * 24 * 30),
    period=st.sampled_from([1, 60, 1440]),
)
def test_chunks_cover_the_range_contiguously_with_at_most_5000_candles(
    start: int, span: int, period: int
) -> None:
    end = start + span
    chunks = chunk_range(start, end, period)
    assert chunks[0][0] == start and chunks[-1][1] == end
    for (_, hi), (lo, _) in itertools.pairwise(chunks):
        assert lo == hi + 1
    step = period * 60
    for lo, hi in chunks:
        ends = hi // step - (-(-lo // step)) + 1
        assert ends <= 5000
