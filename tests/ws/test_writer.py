"""The writer's timing (size or timer), once-a-second freshness, retries and final flush.

Time-based logic runs on trio's MockClock; the database is a recording fake here (the real
sink is exercised by the integration tests).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from ingestor.stream.buffer import Batch, StreamBuffer
from ingestor.stream.freshness import Freshness, StateUpdate
from ingestor.stream.sink import SinkResult
from ingestor.stream.stats import LatencyHistogram
from ingestor.stream.writer import StreamWriter
from tests.ws.test_buffer_gaps import T0, tick


@dataclass
class FakeSink:
    """Records every write; can fail or hang on demand."""

    fail: int = 0
    hang: bool = False
    calls: list[tuple[float, Batch, StateUpdate | None]] = field(default_factory=list)
    committed_max: datetime | None = None

    async def __call__(self, batch: Batch, state: StateUpdate | None) -> SinkResult:
        if self.hang:
            await trio.sleep_forever()
        await trio.sleep(0.001)
        if self.fail:
            self.fail -= 1
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        batch_max = None
        if batch.max_ts_us is not None:
            batch_max = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=batch.max_ts_us)
        visible = max(d for d in (self.committed_max, batch_max) if d is not None) if (
            self.committed_max or batch_max) else None
        if state is not None:
            # freshness may only describe rows committed before or with this batch
            assert visible is not None and state.last_tick_ts <= visible
        self.committed_max = visible
        self.calls.append((trio.current_time(), batch, state))
        return SinkResult(len(batch.ticks), 0, (), len(batch.lifecycle), (), "copy")

    @property
    def states(self) -> list[tuple[float, StateUpdate]]:
        return [(t, s) for t, _, s in self.calls if s is not None]


def make(sink: FakeSink, **kw: float) -> tuple[StreamBuffer, StreamWriter]:
    buf = StreamBuffer(int(kw.pop("maxsize", 1000)))
    writer = StreamWriter(buf, sink, batch_size=int(kw.pop("batch_size", 100)),
                          flush_seconds=kw.pop("flush_seconds", 0.25), retry_base=0.5)
    return buf, writer


async def test_timer_flushes_a_partial_batch_after_flush_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = FakeSink()
    buf, writer = make(sink)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        start = trio.current_time()
        for i in range(3):
            buf.add_tick(*tick("A", i), now=trio.current_time())
            writer.poke()
            await trio.sleep(0.05)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    when, batch, _ = sink.calls[0]
    assert len(batch.ticks) == 3
    assert when - start == pytest.approx(0.25 + 0.001, abs=1e-6)


async def test_a_full_batch_is_written_without_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = FakeSink()
    buf, writer = make(sink, batch_size=5, flush_seconds=10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        start = trio.current_time()
        for i in range(5):
            buf.add_tick(*tick("A", i), now=trio.current_time())
        writer.poke()
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    assert [len(b.ticks) for _, b, _ in sink.calls] == [5]
    assert sink.calls[0][0] - start < 0.01


async def test_freshness_and_quotes_are_written_at_most_once_a_second_and_end_current(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = FakeSink()
    buf, writer = make(sink)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for i in range(31):  # a tick every 0.1 s for 3 s
            buf.add_tick(*tick("A", i), now=trio.current_time())
            writer.poke()
            await trio.sleep(0.1)
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    assert len(sink.calls) >= 12
    times = [t for t, _ in sink.states]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert 3 <= len(times) <= 5
    quote_times = [t for t, b, _ in sink.calls if b.quotes]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(quote_times))
    assert sink.calls[-1][1].quotes[-1].price_dollars == 30  # the newest quote made it out
    last = sink.states[-1][1]
    assert last.last_tick_ts == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=30)
    assert last.last_ws_tick_ts == T0 + timedelta(seconds=30)


async def test_a_failed_write_is_retried_with_the_same_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = FakeSink(fail=3)
    buf, writer = make(sink, maxsize=10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for i in range(4):
            buf.add_tick(*tick("A", i), now=trio.current_time())
        writer.poke()
        await trio.sleep(0.3)
        assert buf.inflight == 4 and not sink.calls
        for i in range(4, 12):  # only 6 more fit while 4 are in flight
            buf.add_tick(*tick("B", i), now=trio.current_time())
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    written = [r.ts_us // 1_000_000 for _, b, _ in sink.calls for r in b.ticks]
    assert written == list(range(10))
    assert writer.stats.batch_errors == 3
    assert buf.counters.dropped_ticks == 2 and buf.inflight == 0
    dropped = [g for _, b, _ in sink.calls for g in b.gaps]
    # recorded while it lasted, then closed by a later batch although no tick came since
    assert [g.ended_at is None for g in dropped] == [True, False]
    assert dropped[-1].dropped_ticks == 2 and dropped[-1].markets == ("B",)


async def test_flush_all_rewrites_a_batch_interrupted_mid_write(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = FakeSink(hang=True)
    buf, writer = make(sink)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for i in range(3):
            buf.add_tick(*tick("A", i), now=trio.current_time())
        writer.poke()
        await trio.sleep(1)
        buf.add_tick(*tick("A", 9), now=trio.current_time())
        nursery.cancel_scope.cancel()
    assert not sink.calls and buf.inflight == 3
    sink.hang = False
    assert await writer.flush_all()
    written = [[r.ts_us // 1_000_000 for r in b.ticks] for _, b, _ in sink.calls]
    assert written[:2] == [[0, 1, 2], [9]]
    assert sink.states and sink.states[-1][1].last_tick_ts.second == 9
    assert buf.inflight == 0 and not buf.has_work


def test_latency_percentiles_come_from_the_histogram() -> None:
    hist = LatencyHistogram()
    assert hist.percentile(99) is None
    hist.add_many(10.0, [10.0 - i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert hist.percentile(50) == pytest.approx(50, rel=0.1)
    assert hist.percentile(99) == pytest.approx(99, rel=0.1)
    assert hist.percentile(100) == hist.max_ms == pytest.approx(100)


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False),
       st.floats(min_value=0.01, max_value=100, allow_nan=False))
def test_freshness_is_due_exactly_when_planned(last_write: float, interval: float) -> None:
    # A mock clock jumps to exactly due_at(); plan() must then agree, or the writer would spin.
    fresh = Freshness(interval)
    fresh.committed(5_000_000, T0, StateUpdate(T0, T0), last_write)
    fresh.committed(9_000_000, T0 + timedelta(seconds=1), None, last_write)
    due = fresh.due_at()
    assert due is not None
    assert fresh.plan(None, None, due) is not None
