"""Fixtures for supervisor tests: fake child processes for MockClock, real CLI runs for the rest."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from ingestor.supervisor.child import ChildSpec
from ingestor.supervisor.status_file import read_status

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Behaviour:
    """How one fake child life goes: runs `runtime` seconds (None: until signalled), exits."""

    runtime: float | None = None
    code: int = 1
    output: bytes = b""
    ignores_sigterm: bool = False


class FakeProcess:
    """A child process made of trio primitives, so restarts can run under MockClock."""

    def __init__(self, pid: int, behaviour: Behaviour) -> None:
        self.pid = pid
        self.behaviour = behaviour
        self.signals: list[tuple[float, int]] = []
        self._code: int | None = None
        self._exited = trio.Event()
        self._output = behaviour.output

    @property
    def returncode(self) -> int | None:
        return self._code

    def finish(self, code: int) -> None:
        if self._code is None:
            self._code = code
            self._exited.set()

    async def wait(self) -> int:
        if self.behaviour.runtime is not None:
            with trio.move_on_after(self.behaviour.runtime):
                await self._exited.wait()
            self.finish(self.behaviour.code)
        await self._exited.wait()
        assert self._code is not None
        return self._code

    async def receive_output(self, max_bytes: int) -> bytes:
        if self._output:
            chunk, self._output = self._output[:max_bytes], self._output[max_bytes:]
            return chunk
        await self._exited.wait()
        return b""

    def signal_group(self, signum: int) -> None:
        self.signals.append((trio.current_time(), signum))
        if signum == signal.SIGKILL or (
            signum == signal.SIGTERM and not self.behaviour.ignores_sigterm
        ):
            self.finish(-signum)

    async def aclose(self) -> None:
        return None


@dataclass
class FakeSpawner:
    """Hands out FakeProcesses per role from a plan, recording when each was spawned."""

    plans: dict[str, list[Behaviour]]
    default: Behaviour = field(default_factory=Behaviour)
    spawned: dict[str, list[tuple[float, FakeProcess]]] = field(default_factory=dict)
    _next_pid: int = 1000

    async def __call__(self, spec: ChildSpec) -> FakeProcess:
        plan = self.plans.get(spec.name, [])
        behaviour = plan.pop(0) if plan else self.default
        self._next_pid += 1
        proc = FakeProcess(self._next_pid, behaviour)
        self.spawned.setdefault(spec.name, []).append((trio.current_time(), proc))
        return proc

    def times(self, role: str) -> list[float]:
        return [t for t, _ in self.spawned.get(role, [])]


def python_child(code: str) -> str:
    """A --child-command template running `code` with this interpreter."""
    return shlex.join([sys.executable, "-c", code])


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A small, explicit environment for a supervisor subprocess."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "INGESTOR_HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


@dataclass
class SupervisorRun:
    proc: subprocess.Popen[bytes]
    status_path: Path

    def status(self) -> dict[str, Any] | None:
        return read_status(self.status_path)

    def wait_status(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll the status file until `predicate` holds (the timeout only bounds a hang)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.status()
            if last is not None and predicate(last):
                return last
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(
            f"status never matched; exit={self.proc.poll()} last={json.dumps(last, indent=1)}"
        )

    def stop(self, timeout: float = 20.0) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()


@pytest.fixture
def start_supervisor(tmp_path: Path) -> Iterator[Callable[..., SupervisorRun]]:
    """Start `python -m ingestor run ...` as a real process; killed at teardown if still up."""
    runs: list[SupervisorRun] = []

    def start(*args: str, env: dict[str, str] | None = None) -> SupervisorRun:
        status_path = tmp_path / f"status-{len(runs)}.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingestor", "run", "--status-file", str(status_path), *args],
            env=env if env is not None else base_env(tmp_path),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        run = SupervisorRun(proc, status_path)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()
        status = read_status(run.status_path)
        for info in (status or {}).get("roles", {}).values():
            if info.get("pid"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(info["pid"], signal.SIGKILL)
