"""The supervisor: one task per child in a nursery, signals turned into a graceful stop."""

from __future__ import annotations

import logging
import random
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from ingestor.supervisor.child import (
    ChildSpec,
    ChildSupervisor,
    OutputSettings,
    Spawner,
    StopControl,
    spawn_process,
)
from ingestor.supervisor.policy import RestartSettings
from ingestor.supervisor.status_file import StatusBoard

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FATAL = 1


@dataclass(frozen=True)
class SupervisorOptions:
    """Behaviour of `ingestor run` that is not per child."""

    restart: RestartSettings = field(default_factory=RestartSettings)
    grace_seconds: float = 10.0
    exit_on_fatal: bool = False

    def __post_init__(self) -> None:
        if self.grace_seconds < 0:
            raise ValueError(f"--grace-seconds must be >= 0 (got {self.grace_seconds})")


class Supervisor:
    """Runs every child until a stop request (signal or `stop()`), then stops them all."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        options: SupervisorOptions,
        *,
        board: StatusBoard,
        output: OutputSettings,
        spawn: Spawner = spawn_process,
        rng: random.Random | None = None,
    ) -> None:
        if not specs:
            raise ValueError("nothing to supervise")
        self.options = options
        self.board = board
        self._control = StopControl()
        self._exit_code = EXIT_OK
        self._fatal: set[str] = set()
        self.children = [
            ChildSupervisor(
                spec,
                options.restart,
                board,
                output,
                self._control,
                grace_seconds=options.grace_seconds,
                on_fatal=self._child_fatal,
                spawn=spawn,
                rng=rng,
            )
            for spec in specs
        ]

    @property
    def stopping(self) -> bool:
        return self._control.stopping.is_set()

    def stop(self) -> None:
        """Begin a graceful stop: SIGTERM to every child group, SIGKILL after the grace."""
        self._control.stopping.set()

    def force(self) -> None:
        """Skip what is left of the grace period: SIGKILL now."""
        self._control.stopping.set()
        self._control.forcing.set()

    def _child_fatal(self, role: str, reason: str) -> None:
        self._fatal.add(role)
        if self.options.exit_on_fatal and not self.stopping:
            log.critical("stopping every role: %s is FATAL and --exit-on-fatal is set", role)
            self._exit_code = EXIT_FATAL
            self.stop()

    async def run(
        self,
        *,
        handle_signals: bool = True,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> int:
        """Supervise until stopped; 0 after a requested stop, 1 on --exit-on-fatal or all FATAL."""
        self.board.write()
        async with trio.open_nursery() as outer:
            if handle_signals:
                await outer.start(self._watch_signals)
            log.info(
                "supervising roles=%s status_file=%s",
                ",".join(c.name for c in self.children),
                self.board.path,
            )
            task_status.started()
            async with trio.open_nursery() as nursery:
                for child in self.children:
                    nursery.start_soon(child.run)
            outer.cancel_scope.cancel()
        killed = [c.name for c in self.children if c.killed_after_grace]
        if killed:
            log.warning("roles needed SIGKILL after the grace period roles=%s", ",".join(killed))
        if not self.stopping:
            log.critical("every role is FATAL; nothing left to supervise")
            return EXIT_FATAL
        log.info("supervisor stopped exit_code=%d", self._exit_code)
        return self._exit_code

    async def _watch_signals(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                if not self.stopping:
                    log.info(
                        "received %s; stopping roles grace=%gs",
                        name,
                        self.options.grace_seconds,
                    )
                    self.stop()
                else:
                    log.warning("received %s again; killing roles now", name)
                    self.force()
