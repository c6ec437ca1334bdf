"""The bounded buffer (dedupe, newest quote, drop accounting) and the gap tracker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from ingestor.db.ws_gaps import DISCONNECTED, DROPPED, SHUTDOWN, STALE, STARTUP, GapRecord
from ingestor.kalshi.ws import ConnectionEvent
from ingestor.kalshi.ws_protocol import Ticker
from ingestor.stream.buffer import StreamBuffer
from ingestor.stream.gaps import GapTracker
from ingestor.stream.receiver import Receiver
from ingestor.stream.rows import TickRow
from ingestor.stream.sharding import Shard
from ingestor.stream.stats import StreamStats

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def tick(ticker: str, n: int, fp: int | None = None) -> tuple[TickRow, Ticker]:
    """A tick n seconds after T0 (exchange time n s after the epoch) with price n."""
    at_us = (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) + n * 10**6
    row = TickRow(ticker, n * 1_000_000, fp if fp is not None else hash((ticker, n)), at_us,
                  float(n), f"{ticker}\t{n}\n")
    message = Ticker(ticker, None, Decimal(n), None, None, None, None, None, None, None, None,
                     None, None, None, n * 1000)
    return row, message


def test_duplicates_in_a_batch_are_kept_once_and_quotes_keep_the_newest() -> None:
    buf = StreamBuffer(100)
    assert buf.add_tick(*tick("A", 1), now=0.0)
    assert not buf.add_tick(*tick("A", 1), now=0.1)
    assert buf.add_tick(*tick("A", 3), now=0.2)
    assert buf.add_tick(*tick("A", 2), now=0.3)
    batch = buf.take()
    assert [r.ts_us for r in batch.ticks] == [1_000_000, 3_000_000, 2_000_000]
    assert [q.price_dollars for q in batch.quotes] == [Decimal(3)]
    assert batch.max_ts_us == 3_000_000
    assert buf.counters.duplicates == 1
    assert buf.oldest is None and buf.pending == 0 and buf.inflight == 3


def test_a_full_buffer_drops_new_items_and_accounts_for_every_one() -> None:
    buf = StreamBuffer(4)
    for i in range(3):
        buf.add_tick(*tick("A", i), now=float(i))
    first = buf.take()  # 3 in flight
    assert buf.add_tick(*tick("B", 10), now=10.0)
    assert not buf.add_tick(*tick("C", 11), now=11.0)
    assert not buf.add_tick(*tick("D", 12), now=12.0)
    assert buf.counters.dropped_ticks == 2
    buf.release(first)
    second = buf.take()
    [gap] = second.gaps
    # open while the episode may go on, so a reader never sees a closed window grow
    assert (gap.reason, gap.dropped_ticks, gap.markets) == (DROPPED, 2, ("C", "D"))
    assert (gap.started_at, gap.ended_at) == (T0 + timedelta(seconds=11), None)
    buf.release(second)
    for i in range(20, 26):
        buf.add_tick(*tick("E", i), now=float(i))
    third = buf.take()
    [gap] = third.gaps
    assert (gap.started_at, gap.ended_at, gap.dropped_ticks, gap.markets) == (
        T0 + timedelta(seconds=11), None, 4, ("C", "D", "E"))
    buf.release(third)
    # no drop since: the same gap is closed at the last drop, and a new episode starts anew
    assert buf.has_work
    [gap] = buf.take().gaps
    assert (gap.started_at, gap.ended_at, gap.dropped_ticks) == (
        T0 + timedelta(seconds=11), T0 + timedelta(seconds=25), 4)
    assert not buf.has_work
    for i in range(30, 36):
        buf.add_tick(*tick("F", i), now=float(i))
    [gap] = buf.take().gaps
    assert (gap.started_at, gap.dropped_ticks) == (T0 + timedelta(seconds=34), 2)


def test_gap_records_with_the_same_key_collapse_to_the_latest() -> None:
    buf = StreamBuffer(10)
    buf.add_gap(GapRecord(DISCONNECTED, T0), now=1.0)
    buf.add_gap(GapRecord(DISCONNECTED, T0, T0 + timedelta(seconds=2)), now=2.0)
    assert buf.oldest == 1.0 and buf.has_work
    [gap] = buf.take().gaps
    assert gap.ended_at == T0 + timedelta(seconds=2)


def test_tracker_windows_from_start_to_shutdown() -> None:
    wanted = {"A", "B"}
    tr = GapTracker(lambda: wanted)
    [start] = tr.start(T0)
    assert (start.reason, start.ended_at, start.markets) == (STARTUP, None, ("A", "B"))
    [closed] = tr.synced(T0 + timedelta(seconds=1))
    assert closed.ended_at == T0 + timedelta(seconds=1)
    [drop] = tr.disconnected(T0 + timedelta(seconds=5), "closed by peer code=1006")
    assert drop.reason == DISCONNECTED
    assert tr.disconnected(T0 + timedelta(seconds=6), "OSError: refused") == []
    wanted.add("C")
    [back] = tr.synced(T0 + timedelta(seconds=8))
    assert (back.started_at, back.ended_at, back.markets) == (
        T0 + timedelta(seconds=5), T0 + timedelta(seconds=8), ("A", "B", "C"))
    [stale] = tr.disconnected(T0 + timedelta(seconds=9), "no frame for 30s")
    assert stale.reason == STALE
    [down] = tr.shutdown(T0 + timedelta(seconds=10))
    assert down.reason == SHUTDOWN and {g.reason for g in tr.open} == {STALE, SHUTDOWN}


def test_tracker_adopts_gaps_an_earlier_run_left_open() -> None:
    tr = GapTracker(lambda: {"A"})
    left = GapRecord(SHUTDOWN, T0, None, ("Z",))
    assert tr.start(T0 + timedelta(minutes=5), [left]) == []
    [closed] = tr.synced(T0 + timedelta(minutes=6))
    assert (closed.reason, closed.started_at, closed.markets) == (SHUTDOWN, T0, ("A", "Z"))


def test_a_gap_starts_no_later_than_the_last_tick_received_before_it() -> None:
    client = SimpleNamespace(liveness_timeout=30.0, reply_timeout=10.0, disconnect_timeout=5.0)
    buf = StreamBuffer(10)
    writer = SimpleNamespace(poke=lambda: None)
    tracker = GapTracker(lambda: {"A"})
    rx = Receiver(client, Shard(), buf, writer, tracker, StreamStats(),  # type: ignore[arg-type]
                  clock=lambda: 0.0)
    at = T0 + timedelta(minutes=10)

    def event(kind: Any, gap_start: datetime | None = None) -> ConnectionEvent:
        return ConnectionEvent(kind, at, 0.0, 1, "closed by peer", gap_start)

    # the client's own estimate (its last frame) wins when it is the earliest evidence
    assert rx.gap_start(event("disconnected", at - timedelta(seconds=3))) == (
        at - timedelta(seconds=3))
    # without one: the connection's start, but no earlier than the client could take to notice
    rx.handle(event("connected"))
    assert rx.gap_start(event("disconnected")) == at
    rx._connected_at = at - timedelta(hours=1)
    assert rx.gap_start(event("disconnected")) == at - timedelta(seconds=45)
    # a slow reader lags: the exchange time of the last tick received bounds the start
    rx._last_tick_us = (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert rx.gap_start(event("subscription_lost", at)) == T0
    rx.handle(event("subscription_lost", at))
    [gap] = buf.take().gaps
    assert (gap.reason, gap.started_at, gap.ended_at) == ("subscription_lost", T0, None)
