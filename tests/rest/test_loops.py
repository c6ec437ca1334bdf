"""Periodic passes: interval from each start, faster retries after transient failures."""

from __future__ import annotations

import itertools

import psycopg
import pytest
import trio
import trio.testing

from ingestor.kalshi.errors import KalshiServerError
from ingestor.loops import is_cancellation, next_delay, only, run_every


def test_next_delay_doubles_from_the_first_retry_up_to_the_interval() -> None:
    assert next_delay(900, 0) == 900
    assert [next_delay(900, n, 30) for n in (1, 2, 3, 5, 9)] == [30, 60, 120, 480, 900]
    with pytest.raises(ValueError):
        next_delay(0, 0)


def test_only_looks_through_exception_groups() -> None:
    err = KalshiServerError(500, None, "x")
    assert only(err, (KalshiServerError,))
    assert only(ExceptionGroup("g", [err, ExceptionGroup("h", [err])]), (KalshiServerError,))
    assert not only(ExceptionGroup("g", [err, ValueError()]), (KalshiServerError,))
    assert not is_cancellation(err)


async def test_passes_start_every_interval_and_retry_sooner_after_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    starts: list[float] = []
    outcomes = itertools.chain(["ok", "kalshi", "db", "ok"], itertools.repeat("ok"))

    async def one_pass() -> None:
        starts.append(trio.current_time())
        await trio.sleep(5)  # the pass itself takes time; the interval counts from its start
        kind = next(outcomes)
        if kind == "kalshi":
            raise KalshiServerError(503, None, "down")
        if kind == "db":
            raise ExceptionGroup("pass", [psycopg.OperationalError("gone")])

    with trio.move_on_after(1000):
        await run_every("test", 300, one_pass, first_retry=30)
    gaps = [round(b - a) for a, b in itertools.pairwise(starts)]
    assert gaps[:4] == [300, 30, 60, 300]


async def test_a_bug_ends_the_loop(autojump_clock: trio.testing.MockClock) -> None:
    async def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await run_every("test", 10, broken)
