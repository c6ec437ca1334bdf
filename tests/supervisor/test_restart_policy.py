"""The restart policy as a pure state machine: backoff, stable reset, start limit, status 2."""

from __future__ import annotations

import random

import pytest

from ingestor.supervisor.policy import (
    EXIT_BAD_CONFIG,
    EXIT_NOT_READY,
    InvalidRestartSettings,
    RestartSettings,
    RestartTracker,
    Verdict,
    describe_exit,
)


def tracker(**overrides: float) -> RestartTracker:
    settings = RestartSettings(**{"jitter": 0.0, **overrides})  # type: ignore[arg-type]
    return RestartTracker(settings, random.Random(7))


def crash(t: RestartTracker, start: float, ran: float, code: int = 1) -> tuple[Verdict, float]:
    t.started(start)
    decision = t.exited(start + ran, code)
    return decision.verdict, decision.delay


def test_backoff_doubles_per_quick_failure_and_stops_at_the_cap() -> None:
    t = tracker(backoff_initial=1, backoff_max=5, start_retries=100)
    delays = [crash(t, i * 100.0, 0.1)[1] for i in range(6)]
    assert delays == [1, 2, 4, 5, 5, 5]


def test_jitter_only_shortens_the_delay_and_never_exceeds_the_cap() -> None:
    t = RestartTracker(
        RestartSettings(backoff_initial=1, backoff_max=8, jitter=0.5, start_retries=100)
    )
    for streak in range(1, 12):
        base = min(8.0, 2.0 ** (streak - 1))
        for _ in range(50):
            delay = t.backoff(streak)
            assert base * 0.5 <= delay <= base


def test_jitter_spreads_restarts_of_children_that_crashed_together() -> None:
    t = RestartTracker(RestartSettings(backoff_initial=10, jitter=0.2), random.Random(1))
    assert len({round(t.backoff(1), 6) for _ in range(20)}) > 1


def test_a_stable_run_resets_the_backoff() -> None:
    t = tracker(backoff_initial=1, backoff_max=60, stable_seconds=30, start_retries=100)
    assert [crash(t, 0, 0.1)[1], crash(t, 10, 0.1)[1], crash(t, 20, 0.1)[1]] == [1, 2, 4]
    assert crash(t, 30, 31)[1] == 1
    assert crash(t, 100, 0.1)[1] == 2


def test_too_many_quick_failures_within_the_window_is_fatal() -> None:
    t = tracker(start_retries=3, fail_window=60)
    verdicts = [crash(t, i * 10.0, 1)[0] for i in range(4)]
    assert verdicts == [Verdict.RESTART, Verdict.RESTART, Verdict.RESTART, Verdict.FATAL]


def test_start_retries_zero_means_the_first_failure_is_fatal() -> None:
    t = tracker(start_retries=0)
    assert crash(t, 0, 0.1)[0] is Verdict.FATAL


def test_backoff_waits_do_not_stretch_a_crash_loop_out_of_the_window() -> None:
    # Restart delays of 1, 2, 4 ... 60 s: wall-clock spacing soon exceeds the 60 s window,
    # but the child only ever runs 0.5 s, so its run time keeps every failure in the window.
    t = tracker(backoff_initial=1, backoff_max=60, start_retries=5, fail_window=60)
    now, verdicts = 0.0, []
    for _ in range(6):
        verdict, delay = crash(t, now, 0.5)
        verdicts.append(verdict)
        now += 0.5 + delay
    assert verdicts[-1] is Verdict.FATAL
    assert verdicts[:-1] == [Verdict.RESTART] * 5


def test_failures_spread_over_more_run_time_than_the_window_are_not_fatal() -> None:
    t = tracker(start_retries=2, fail_window=60, stable_seconds=1000)
    verdicts = [crash(t, i * 100.0, 35)[0] for i in range(10)]
    assert Verdict.FATAL not in verdicts


def test_status_2_is_fatal_at_once() -> None:
    t = tracker(start_retries=5)
    t.started(0)
    decision = t.exited(0.2, EXIT_BAD_CONFIG)
    assert decision.fatal
    assert "bad configuration" in decision.reason


def test_status_2_after_a_stable_run_is_still_fatal() -> None:
    t = tracker(stable_seconds=1)
    assert crash(t, 0, 100, EXIT_BAD_CONFIG)[0] is Verdict.FATAL


def test_not_ready_status_backs_off_but_never_counts_toward_fatal() -> None:
    t = tracker(backoff_initial=1, backoff_max=8, start_retries=1)
    results = [crash(t, i * 20.0, 0.2, EXIT_NOT_READY) for i in range(10)]
    assert {v for v, _ in results} == {Verdict.RESTART}
    assert results[-1][1] == 8
    assert crash(t, 500, 0.2, 1)[0] is Verdict.RESTART
    assert crash(t, 600, 0.2, 1)[0] is Verdict.FATAL


def test_a_child_killed_by_a_signal_counts_as_a_failure() -> None:
    t = tracker(start_retries=1)
    assert crash(t, 0, 0.1, -9)[0] is Verdict.RESTART
    assert crash(t, 5, 0.1, -9)[0] is Verdict.FATAL


def test_is_stable_after_stable_seconds() -> None:
    t = tracker(stable_seconds=30)
    t.started(100)
    assert not t.is_stable(129.9)
    assert t.is_stable(130)


def test_exited_before_started_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        tracker().exited(1.0, 1)


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [
        ("backoff_initial", -1, "--backoff-initial"),
        ("backoff_max", 0.5, "--backoff-max"),
        ("stable_seconds", 0, "--stable-seconds"),
        ("start_retries", -1, "--start-retries"),
        ("fail_window", 0, "--fail-window"),
        ("startsecs", -0.1, "--startsecs"),
    ],
)
def test_invalid_settings_name_the_option(field: str, value: float, option: str) -> None:
    with pytest.raises(InvalidRestartSettings, match=option):
        RestartSettings(**{field: value})  # type: ignore[arg-type]


def test_describe_exit_names_signals_and_statuses() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(None) == "could not be started"
