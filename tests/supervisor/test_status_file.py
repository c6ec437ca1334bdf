"""The status file: atomic JSON, read_status and stale detection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ingestor.supervisor.status_file import (
    State,
    StatusBoard,
    pid_alive,
    process_start_ticks,
    read_status,
)


def test_board_writes_every_field_the_readers_use(tmp_path: Path) -> None:
    path = tmp_path / "run" / "status.json"
    board = StatusBoard(path, ["rest", "ws"])
    board.update("rest", state=State.RUNNING, pid=1234, restarts=2, last_exit_code=-9)
    data = read_status(path)
    assert data is not None
    assert data["supervisor_pid"] == os.getpid()
    assert data["stale"] is False
    rest = data["roles"]["rest"]
    assert rest["state"] == "RUNNING" and rest["pid"] == 1234 and rest["restarts"] == 2
    assert rest["last_exit_code"] == -9
    assert set(rest) == {
        "state",
        "pid",
        "started_at",
        "restarts",
        "last_exit_code",
        "last_error_line",
        "updated_at",
    }
    assert data["roles"]["ws"]["state"] == "STARTING"


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    board = StatusBoard(tmp_path / "status.json", ["rest"])
    for i in range(20):
        board.update("rest", restarts=i)
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_listener_sees_each_update(tmp_path: Path) -> None:
    seen: list[tuple[str, State]] = []
    board = StatusBoard(None, ["rest"], listener=lambda role, s: seen.append((role, s.state)))
    board.update("rest", state=State.RUNNING)
    board.update("rest", state=State.BACKOFF)
    assert seen == [("rest", State.RUNNING), ("rest", State.BACKOFF)]


def test_read_status_flags_a_dead_supervisor_as_stale(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"supervisor_pid": dead.pid, "roles": {"rest": {}}}))
    data = read_status(path)
    assert data is not None and data["stale"] is True


def test_read_status_flags_a_reused_pid_as_stale(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    ticks = process_start_ticks(os.getpid())
    assert ticks is not None
    path.write_text(
        json.dumps(
            {"supervisor_pid": os.getpid(), "supervisor_start_ticks": ticks + 1, "roles": {}}
        )
    )
    data = read_status(path)
    assert data is not None and data["stale"] is True


def test_read_status_of_missing_or_garbage_files_is_none(tmp_path: Path) -> None:
    assert read_status(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert read_status(tmp_path / "bad.json") is None
    (tmp_path / "list.json").write_text("[]")
    assert read_status(tmp_path / "list.json") is None


def test_pid_alive() -> None:
    assert pid_alive(os.getpid(), process_start_ticks(os.getpid()))
    assert not pid_alive(0)


def test_unwritable_status_file_does_not_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    board = StatusBoard(blocker / "status.json", ["rest"])
    board.update("rest", state=State.RUNNING)
    assert board.get("rest").state is State.RUNNING
