"""The backfill cursor: it only moves past windows whose markets are all done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ingestor.backfill.window import WindowTracker, boundaries, default_cursor

T0 = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
H = timedelta(hours=1)


def test_boundaries_align_inside_and_end_at_now() -> None:
    now = T0 + 3 * H + timedelta(minutes=10)
    assert boundaries(T0, now) == [
        T0,
        datetime(2026, 1, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 2, tzinfo=UTC),
        datetime(2026, 1, 1, 3, tzinfo=UTC),
        now,
    ]
    assert boundaries(T0, T0) == [T0]
    assert boundaries(T0, T0 - H) == [T0]


def test_default_cursor_is_start_days_before_now() -> None:
    assert default_cursor(T0, 7) == T0 - timedelta(days=7)


def test_cursor_moves_to_now_when_every_window_is_done() -> None:
    now = T0 + 5 * H
    closes = {"a": T0 + H, "b": T0 + 2 * H, "open": now + H, "none": None}
    tracker = WindowTracker(T0, now, closes)
    first = datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert tracker.cursor == first  # the empty window [00:30, 01:00) is done already
    assert tracker.order() == ["a", "b", "open", "none"]
    tracker.finish("b", True)
    assert tracker.cursor == first  # "a" is still pending in an earlier window
    tracker.finish("a", True)
    assert tracker.cursor == now  # the open tail never holds the cursor back
    tracker.finish("open", True)
    tracker.finish("none", False)
    assert tracker.cursor == now and not tracker.held_back


def test_a_failed_market_holds_its_window_for_good() -> None:
    now = T0 + 5 * H
    closes = {
        "a": T0 + timedelta(minutes=40),
        "b": T0 + 2 * H + timedelta(minutes=5),
        "c": T0 + 4 * H,
    }
    tracker = WindowTracker(T0, now, closes)
    tracker.finish("a", True)
    assert tracker.cursor == datetime(2026, 1, 1, 2, tzinfo=UTC)
    tracker.finish("b", False)
    tracker.finish("c", True)
    assert tracker.cursor == datetime(2026, 1, 1, 2, tzinfo=UTC)
    assert tracker.cursor <= closes["b"] and tracker.held_back


def test_no_markets_moves_the_cursor_to_now() -> None:
    assert WindowTracker(T0, T0 + 3 * H, {}).cursor == T0 + 3 * H


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=24 * 60), min_size=0, max_size=40),
    outcomes=st.lists(st.booleans(), min_size=40, max_size=40),
    order_seed=st.randoms(use_true_random=False),
)
def test_cursor_never_passes_an_unfinished_or_failed_market(
    offsets: list[int], outcomes: list[bool], order_seed
) -> None:  # type: ignore[no-untyped-def]
    now = T0 + 20 * H
    closes = {f"m{i}": T0 + timedelta(minutes=o) for i, o in enumerate(offsets)}
    tracker = WindowTracker(T0, now, closes)
    pending = dict(closes)
    failed: dict[str, datetime] = {}
    tickers = list(closes)
    order_seed.shuffle(tickers)
    last = tracker.cursor
    for i, ticker in enumerate(tickers):
        ok = outcomes[i]
        tracker.finish(ticker, ok)
        close = pending.pop(ticker)
        if not ok:
            failed[ticker] = close
        blocking = [c for c in [*pending.values(), *failed.values()] if c < now]
        if blocking:
            assert tracker.cursor <= min(blocking)
        assert tracker.cursor >= last
        last = tracker.cursor
    if not failed:
        assert tracker.cursor == now
