"""The supervisor's restart loop on virtual time: fake children, MockClock, no sleeping."""

from __future__ import annotations

import itertools
import random
import signal
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

from ingestor.supervisor.child import ChildSpec, OutputSettings
from ingestor.supervisor.logfmt import SecretMasker
from ingestor.supervisor.policy import RestartSettings
from ingestor.supervisor.status_file import State, StatusBoard, read_status
from ingestor.supervisor.supervise import Supervisor, SupervisorOptions

from .conftest import Behaviour, FakeSpawner

FAST = RestartSettings(
    backoff_initial=1,
    backoff_max=8,
    jitter=0,
    stable_seconds=30,
    start_retries=3,
    fail_window=60,
    startsecs=1,
)


def make(
    tmp_path: Path,
    spawner: FakeSpawner,
    roles: tuple[str, ...] = ("rest",),
    restart: RestartSettings = FAST,
    lines: list[str] | None = None,
    **options: object,
) -> Supervisor:
    specs = [ChildSpec(r, ("fake", r), {}) for r in roles]
    sink = lines.append if lines is not None else (lambda line: None)
    return Supervisor(
        specs,
        SupervisorOptions(restart=restart, **options),  # type: ignore[arg-type]
        board=StatusBoard(tmp_path / "status.json", roles),
        output=OutputSettings(sink=sink, masker=SecretMasker()),
        spawn=spawner,
        rng=random.Random(3),
    )


async def wait_state(sup: Supervisor, role: str, state: State) -> None:
    while sup.board.get(role).state is not state:
        await trio.sleep(0.01)


async def test_restarts_follow_the_backoff_then_fatal(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner({}, default=Behaviour(runtime=0.5, code=1))
    sup = make(tmp_path, spawner)
    code = await sup.run(handle_signals=False)
    # Exits at 0.5 s, then waits 1, 2, 4 s; the fourth quick failure is over --start-retries 3.
    assert spawner.times("rest") == pytest.approx([0.0, 1.5, 4.0, 8.5])
    assert sup.board.get("rest").state is State.FATAL
    assert sup.board.get("rest").restarts == 3
    assert sup.board.get("rest").last_exit_code == 1
    assert code == 1  # every role FATAL: nothing left to supervise


async def test_a_stable_run_restarts_after_the_initial_delay(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner({}, default=Behaviour(runtime=40, code=0))
    sup = make(tmp_path, spawner)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        await trio.sleep(200)
        sup.stop()
    times = spawner.times("rest")
    assert len(times) >= 4
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([41.0] * (len(times) - 1))


async def test_running_only_after_startsecs(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner({}, default=Behaviour(runtime=None))
    seen: list[tuple[float, State]] = []
    sup = make(tmp_path, spawner, restart=RestartSettings(startsecs=5, jitter=0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        for _ in range(8):
            seen.append((trio.current_time(), sup.board.get("rest").state))
            await trio.sleep(1)
        sup.stop()
    assert [s for t, s in seen if t < 5] == [State.STARTING] * 5
    assert {s for t, s in seen if t > 5} == {State.RUNNING}


async def test_fatal_role_does_not_stop_the_others(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner(
        {"rest": [Behaviour(runtime=0.1, code=1) for _ in range(10)]},
        default=Behaviour(runtime=None),
    )
    sup = make(tmp_path, spawner, roles=("rest", "ws"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        await wait_state(sup, "rest", State.FATAL)
        await trio.sleep(60)
        assert sup.board.get("ws").state is State.RUNNING
        assert len(spawner.times("ws")) == 1
        assert not sup.stopping
        sup.stop()
    assert sup.board.get("ws").state is State.EXITED


async def test_exit_on_fatal_stops_everything_with_status_1(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner(
        {"rest": [Behaviour(runtime=0.1, code=1) for _ in range(10)]},
        default=Behaviour(runtime=None),
    )
    sup = make(tmp_path, spawner, roles=("rest", "ws"), exit_on_fatal=True)
    code = await sup.run(handle_signals=False)
    assert code == 1
    assert sup.board.get("rest").state is State.FATAL
    assert sup.board.get("ws").state is State.EXITED
    ws_proc = spawner.spawned["ws"][0][1]
    assert next(s for _, s in ws_proc.signals) == signal.SIGTERM


async def test_bad_configuration_is_fatal_at_once_and_shows_the_error(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    output = b"invalid configuration for role rest:\n  KALSHI_HOST: must start with http://\n"
    spawner = FakeSpawner({"rest": [Behaviour(runtime=0.2, code=2, output=output)]})
    lines: list[str] = []
    sup = make(tmp_path, spawner, lines=lines)
    code = await sup.run(handle_signals=False)
    assert code == 1
    assert len(spawner.times("rest")) == 1
    status = sup.board.get("rest")
    assert status.state is State.FATAL
    assert status.last_exit_code == 2
    assert status.last_error_line == "KALSHI_HOST: must start with http://"
    assert lines.count("[rest]   KALSHI_HOST: must start with http://") == 1


async def test_stop_during_backoff_ends_in_exited_without_another_start(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner({}, default=Behaviour(runtime=0.1, code=1))
    restart = RestartSettings(backoff_initial=100, backoff_max=100, jitter=0, startsecs=0)
    sup = make(tmp_path, spawner, restart=restart)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        await wait_state(sup, "rest", State.BACKOFF)
        sup.stop()
    assert len(spawner.times("rest")) == 1
    assert sup.board.get("rest").state is State.EXITED


async def test_sigterm_then_sigkill_after_the_grace(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner({}, default=Behaviour(runtime=None, ignores_sigterm=True))
    sup = make(tmp_path, spawner, grace_seconds=7)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        await wait_state(sup, "rest", State.RUNNING)
        stop_at = trio.current_time()
        sup.stop()
    proc = spawner.spawned["rest"][0][1]
    sent = [(round(t - stop_at, 6), s) for t, s in proc.signals]
    assert sent[0] == (0, signal.SIGTERM)
    assert (7, signal.SIGKILL) in sent
    assert sup.children[0].killed_after_grace
    assert sup.board.get("rest").last_exit_code == -signal.SIGKILL


async def test_force_skips_the_rest_of_the_grace(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner({}, default=Behaviour(runtime=None, ignores_sigterm=True))
    sup = make(tmp_path, spawner, grace_seconds=60)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        await wait_state(sup, "rest", State.RUNNING)
        sup.stop()
        await trio.sleep(2)
        forced_at = trio.current_time()
        sup.force()
    proc = spawner.spawned["rest"][0][1]
    kills = [t for t, s in proc.signals if s == signal.SIGKILL]
    assert kills and kills[0] == pytest.approx(forced_at)


async def test_a_child_that_stops_on_sigterm_is_not_killed(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner({}, default=Behaviour(runtime=None))
    sup = make(tmp_path, spawner, roles=("rest", "ws"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        await wait_state(sup, "ws", State.RUNNING)
        sup.stop()
    for role in ("rest", "ws"):
        proc = spawner.spawned[role][0][1]
        assert signal.SIGTERM in [s for _, s in proc.signals]
        assert sup.board.get(role).last_exit_code == -signal.SIGTERM
        assert sup.board.get(role).state is State.EXITED
    assert not any(c.killed_after_grace for c in sup.children)


async def test_spawn_failure_is_a_failure_that_ends_in_fatal(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async def broken(spec: ChildSpec) -> object:
        raise FileNotFoundError(2, "No such file or directory")

    sup = Supervisor(
        [ChildSpec("rest", ("/nonexistent/python",), {})],
        SupervisorOptions(restart=FAST),
        board=StatusBoard(tmp_path / "status.json", ["rest"]),
        output=OutputSettings(sink=lambda line: None, masker=SecretMasker()),
        spawn=broken,  # type: ignore[arg-type]
    )
    assert await sup.run(handle_signals=False) == 1
    status = sup.board.get("rest")
    assert status.state is State.FATAL
    assert status.last_error_line is not None
    assert "No such file" in status.last_error_line


async def test_every_transition_reaches_the_status_file(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    spawner = FakeSpawner({}, default=Behaviour(runtime=None))
    sup = make(tmp_path, spawner)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        await wait_state(sup, "rest", State.RUNNING)
        on_disk = read_status(tmp_path / "status.json")
        assert on_disk is not None
        assert on_disk["roles"]["rest"]["state"] == "RUNNING"
        assert on_disk["roles"]["rest"]["pid"] == spawner.spawned["rest"][0][1].pid
        sup.stop()
    on_disk = read_status(tmp_path / "status.json")
    assert on_disk is not None
    assert on_disk["roles"]["rest"]["state"] == "EXITED"
    assert on_disk["roles"]["rest"]["pid"] is None
