"""One child's supervision: spawn it, forward its output, restart it or declare it FATAL."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import trio

from ingestor.supervisor.logfmt import (
    LineSink,
    LineSplitter,
    LogFormat,
    PemBlockFilter,
    SecretMasker,
    format_line,
    utc_timestamp,
)
from ingestor.supervisor.policy import RestartSettings, RestartTracker, describe_exit
from ingestor.supervisor.status_file import State, StatusBoard

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 64 * 1024
OUTPUT_DRAIN_SECONDS = 2.0
MAX_ERROR_LINE_CHARS = 500


@dataclass(frozen=True)
class ChildSpec:
    """What to run for one role: its name, argv and complete environment."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


class ChildProcess(Protocol):
    """The running child as the supervisor sees it (a trio process, or a fake in tests)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    async def receive_output(self, max_bytes: int) -> bytes: ...

    def signal_group(self, signum: int) -> None: ...

    async def aclose(self) -> None: ...


Spawner = Callable[[ChildSpec], Awaitable[ChildProcess]]
FatalHandler = Callable[[str, str], None]


class TrioChildProcess:
    """A child started in its own session, so its whole process group can be signalled."""

    def __init__(self, proc: trio.Process) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def wait(self) -> int:
        return await self._proc.wait()

    async def receive_output(self, max_bytes: int) -> bytes:
        assert self._proc.stdout is not None
        return await self._proc.stdout.receive_some(max_bytes)

    def signal_group(self, signum: int) -> None:
        # start_new_session made the child a session and group leader: its pgid is its pid.
        # The pid cannot be reused while unreaped, nor while any member of its group lives.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)

    async def aclose(self) -> None:
        if self._proc.stdout is not None:
            await self._proc.stdout.aclose()


async def spawn_process(spec: ChildSpec) -> ChildProcess:
    """Start `spec` with exactly its environment, output piped, in a new process group."""
    proc = await trio.lowlevel.open_process(
        list(spec.argv),
        env=dict(spec.env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return TrioChildProcess(proc)


@dataclass
class StopControl:
    """Shared by all children: `stopping` starts a graceful stop, `forcing` skips the grace."""

    stopping: trio.Event = field(default_factory=trio.Event)
    forcing: trio.Event = field(default_factory=trio.Event)


@dataclass(frozen=True)
class OutputSettings:
    """How child lines are forwarded."""

    sink: LineSink
    masker: SecretMasker
    log_format: LogFormat = "text"


class ChildSupervisor:
    """Runs one role until the supervisor stops or the role turns FATAL."""

    def __init__(
        self,
        spec: ChildSpec,
        restart: RestartSettings,
        board: StatusBoard,
        output: OutputSettings,
        control: StopControl,
        *,
        grace_seconds: float,
        on_fatal: FatalHandler,
        spawn: Spawner = spawn_process,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self._restart = restart
        self._tracker = RestartTracker(restart, rng)
        self._board = board
        self._output = output
        self._control = control
        self._grace = grace_seconds
        self._on_fatal = on_fatal
        self._spawn = spawn
        self._restarts = 0
        self._last_raw_line: str | None = None
        self.killed_after_grace = False

    async def run(self) -> None:
        """Start, watch and restart the child; return on stop (EXITED) or FATAL."""
        stopping = self._control.stopping
        while not stopping.is_set():
            code = await self._run_once()
            if stopping.is_set():
                break
            decision = self._tracker.exited(trio.current_time(), code)
            if decision.fatal:
                self._board.update(self.name, state=State.FATAL, pid=None)
                reason = f"{describe_exit(code)}: {decision.reason}"
                last = self._board.get(self.name).last_error_line
                log.critical(
                    "role FATAL, not restarting role=%s reason=%r last_line=%r",
                    self.name,
                    reason,
                    last,
                )
                self._on_fatal(self.name, reason)
                return
            self._board.update(self.name, state=State.BACKOFF, pid=None)
            log.warning(
                "role exited unexpectedly role=%s %s retry_in=%.2fs",
                self.name,
                decision.reason,
                decision.delay,
            )
            with trio.move_on_after(decision.delay):
                await stopping.wait()
            if not stopping.is_set():
                self._restarts += 1
        self._board.update(self.name, state=State.EXITED, pid=None)

    async def _run_once(self) -> int | None:
        """One life of the child; its exit status, or None when it could not be started."""
        self._tracker.started(trio.current_time())
        self._last_raw_line = None
        self._board.update(self.name, state=State.STARTING, pid=None, restarts=self._restarts)
        try:
            proc = await self._spawn(self.spec)
        except OSError as exc:
            line = f"cannot start {self.spec.argv[0]}: {exc.strerror or exc}"
            log.error("role start failed role=%s error=%r", self.name, line)
            self._board.update(self.name, last_exit_code=None, last_error_line=line)
            return None
        self._board.update(self.name, pid=proc.pid, started_at=utc_timestamp())
        log.info("role started role=%s pid=%d restarts=%d", self.name, proc.pid, self._restarts)
        code: int | None = None
        exited = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                drained = trio.Event()
                nursery.start_soon(self._forward_output, proc, drained)
                nursery.start_soon(self._promote_when_up, exited)
                nursery.start_soon(self._stop_on_request, proc, exited)
                code = await proc.wait()
                exited.set()
                # Whatever the child left behind in its process group goes with it.
                proc.signal_group(signal.SIGKILL)
                with trio.move_on_after(OUTPUT_DRAIN_SECONDS):
                    await drained.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if proc.returncode is None:
                    proc.signal_group(signal.SIGKILL)
                    await proc.wait()
                await proc.aclose()
        self._board.update(
            self.name,
            state=State.EXITED,
            pid=None,
            last_exit_code=code,
            last_error_line=self._last_error_line(),
        )
        log.info("role %s role=%s pid=%d", describe_exit(code), self.name, proc.pid)
        return code

    async def _forward_output(self, proc: ChildProcess, drained: trio.Event) -> None:
        splitter = LineSplitter()
        pem = PemBlockFilter()
        try:
            while True:
                try:
                    data = await proc.receive_output(READ_CHUNK_BYTES)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    break
                if not data:
                    break
                for line in splitter.feed(data):
                    self._emit(pem.filter(line))
            for line in splitter.flush():
                self._emit(pem.filter(line))
        finally:
            drained.set()

    def _emit(self, line: str) -> None:
        out = self._output
        out.sink(format_line(self.name, line, out.log_format, out.masker))
        if line.strip():
            self._last_raw_line = line

    def _last_error_line(self) -> str | None:
        if self._last_raw_line is None:
            return None
        return self._output.masker.mask(self._last_raw_line.strip())[:MAX_ERROR_LINE_CHARS]

    async def _promote_when_up(self, exited: trio.Event) -> None:
        with trio.move_on_after(self._restart.startsecs):
            await exited.wait()
        if not exited.is_set() and self._board.get(self.name).state is State.STARTING:
            self._board.update(self.name, state=State.RUNNING)
            log.info("role running role=%s pid=%s", self.name, self._board.get(self.name).pid)

    async def _stop_on_request(self, proc: ChildProcess, exited: trio.Event) -> None:
        await self._control.stopping.wait()
        self._board.update(self.name, state=State.STOPPING)
        log.info("stopping role=%s pid=%d grace=%gs", self.name, proc.pid, self._grace)
        proc.signal_group(signal.SIGTERM)
        with trio.move_on_after(self._grace) as grace:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_when, self._control.forcing, grace)
                await exited.wait()
                nursery.cancel_scope.cancel()
        if not exited.is_set():
            self.killed_after_grace = True
            log.warning(
                "role did not stop after SIGTERM, sending SIGKILL role=%s pid=%d",
                self.name,
                proc.pid,
            )
            proc.signal_group(signal.SIGKILL)


async def _cancel_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
