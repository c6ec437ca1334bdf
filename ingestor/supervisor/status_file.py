"""The supervisor's status file: every role's state as JSON, replaced atomically on each change.

`read_status(path)` is what `ingestor status` and `ingestor health` call; it flags a file whose
supervisor is gone (`"stale": true`), so a dead supervisor never looks like healthy roles.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ingestor.supervisor.logfmt import utc_timestamp

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class State(enum.StrEnum):
    """Child states, named as supervisord names them."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    EXITED = "EXITED"
    STOPPING = "STOPPING"
    FATAL = "FATAL"


@dataclass(frozen=True)
class RoleStatus:
    """One role's entry in the status file."""

    state: State = State.STARTING
    pid: int | None = None
    started_at: str | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    last_error_line: str | None = None
    updated_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["state"] = str(self.state)
        return out


StatusListener = Callable[[str, RoleStatus], None]


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces and parentheses; fields after the last ')' are fixed.
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True when `pid` runs and, if known, started at `start_ticks` (not a reused pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start_ticks is not None:
        current = process_start_ticks(pid)
        if current is not None and current != start_ticks:
            return False
    return True


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a temp file in the same directory, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_status(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The status file as a dict with `"stale"` added, or None when missing or unreadable.

    Shape: {"supervisor_pid", "supervisor_started_at", "updated_at", "stale",
    "roles": {role: {"state", "pid", "started_at", "restarts", "last_exit_code",
    "last_error_line", "updated_at"}}}. `stale` is true when the supervisor process is gone.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("roles"), dict):
        return None
    pid = data.get("supervisor_pid")
    ticks = data.get("supervisor_start_ticks")
    alive = isinstance(pid, int) and pid_alive(pid, ticks if isinstance(ticks, int) else None)
    data["stale"] = not alive
    return data


class StatusBoard:
    """Every role's current status; each change is written to the status file at once."""

    def __init__(
        self,
        path: Path | None,
        roles: Iterable[str],
        listener: StatusListener | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._listener = listener
        self._wall_clock = wall_clock
        now = utc_timestamp(wall_clock())
        self._roles: dict[str, RoleStatus] = {r: RoleStatus(updated_at=now) for r in roles}
        self._started_at = now
        self._pid = os.getpid()
        self._start_ticks = process_start_ticks(self._pid)
        self._write_failed = False

    def get(self, role: str) -> RoleStatus:
        return self._roles[role]

    def update(self, role: str, **changes: Any) -> RoleStatus:
        """Apply `changes` to `role`'s status, write the file and notify the listener."""
        status = replace(self._roles[role], **changes, updated_at=utc_timestamp(self._wall_clock()))
        self._roles[role] = status
        self.write()
        if self._listener is not None:
            self._listener(role, status)
        return status

    def snapshot(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "supervisor_pid": self._pid,
            "supervisor_start_ticks": self._start_ticks,
            "supervisor_started_at": self._started_at,
            "updated_at": utc_timestamp(self._wall_clock()),
            "roles": {role: s.to_json() for role, s in self._roles.items()},
        }

    def write(self) -> None:
        """Write the file; a failure is logged once and never stops supervision."""
        if self.path is None:
            return
        try:
            write_json_atomic(self.path, self.snapshot())
        except OSError as exc:
            if not self._write_failed:
                log.error("cannot write status file path=%s error=%s", self.path, exc)
            self._write_failed = True
        else:
            self._write_failed = False
