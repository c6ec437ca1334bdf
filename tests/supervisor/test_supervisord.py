"""supervisord.conf for real: migrate once, then `ingestor run`, logs on stdout, clean stop."""

from __future__ import annotations

import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ingestor.supervisor.status_file import read_status

from .conftest import REPO

SUPERVISORD = Path(sys.executable).with_name("supervisord")
CONF = REPO / "supervisord.conf"

pytestmark = pytest.mark.skipif(not SUPERVISORD.exists(), reason="supervisord is not installed")


class Output:
    """Collects a process's combined output from a background thread."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{what} did not happen; output:\n{self.text[-4000:]}")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] == "Z"


def start_supervisord(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Output]:
    proc = subprocess.Popen(
        [str(SUPERVISORD), "-c", str(CONF), "-n"],
        env=env,
        cwd=env["HOME"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return proc, Output(proc)


def stop_supervisord(proc: subprocess.Popen[bytes], output: Output) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output._thread.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def fake_ingestor(tmp_path: Path) -> Iterator[Path]:
    """An `ingestor` first on PATH that logs its calls; `run` becomes the real supervisor
    with two quiet stand-in roles, so this test needs no database."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    child = shlex.join(
        [
            sys.executable,
            "-c",
            "import os, time; print('up', os.environ['SERVICE_ROLE'], flush=True); time.sleep(600)",
        ]
    )
    script = bin_dir / "ingestor"
    script.write_text(
        "#!/bin/sh\n"
        'echo "$*" >> "$HOME/calls.log"\n'
        'if [ "$1" = migrate ]; then echo "migrate: schema is up to date"; exit 0; fi\n'
        f'exec {shlex.quote(sys.executable)} -m ingestor "$@" --only rest,ws --startsecs 0.2 '
        f"--child-command {shlex.quote(child)}\n"
    )
    script.chmod(0o755)
    yield bin_dir


def test_supervisord_runs_migrate_once_then_the_roles_and_stops_cleanly(
    tmp_path: Path, fake_ingestor: Path
) -> None:
    env = {
        "PATH": f"{fake_ingestor}:{SUPERVISORD.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    status_path = tmp_path / ".local/share/kalshi-ingestor/run/supervisor-status.json"
    proc, output = start_supervisord(env)
    pids: list[int] = []
    try:
        output.wait_for(
            lambda: "[rest] up rest" in output.text and "[ws] up ws" in output.text,
            30,
            "both roles logging on stdout",
        )
        output.wait_for(
            lambda: (
                (s := read_status(status_path)) is not None
                and {r["state"] for r in s["roles"].values()} == {"RUNNING"}
            ),
            30,
            "both roles RUNNING in the status file",
        )
        status = read_status(status_path)
        assert status is not None
        pids = [r["pid"] for r in status["roles"].values()]
        assert (tmp_path / "supervisord.pid").exists()
        assert (tmp_path / "supervisor.sock").exists()
    finally:
        code = stop_supervisord(proc, output)
    assert code == 0
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert sorted(calls) == ["migrate", "run"]  # each exactly once
    assert output.text.index("spawned: 'migrate'") < output.text.index("spawned: 'ingestor'")
    assert "migrate: schema is up to date" in output.text
    assert "exited: migrate (exit status 0; expected)" in output.text
    assert "stopped: ingestor (exit status 0)" in output.text
    assert pids and all(pid_gone(p) for p in pids)


def sim_exports(proc: subprocess.Popen[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("export "):
            key, _, value = line[len("export ") :].strip().partition("=")
            found[key] = value
        if "KALSHI_PRIVATE_KEY_PEM_PATH" in found:
            return found
    raise AssertionError("the simulator exited before printing its endpoints")


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("roles.rest") is None,
    reason="roles/rest.py does not exist yet: end-to-end data flow needs the rest role",
)
def test_supervisord_against_a_database_and_the_simulator_ingests_data(
    tmp_path: Path, empty_db_url: str
) -> None:
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingestor.sim",
            "--port",
            "0",
            "--markets",
            "5",
            "--history-hours",
            "2",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        kalshi = sim_exports(sim)
        env = {
            "PATH": f"{SUPERVISORD.parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "INGESTOR_HOME": str(tmp_path / "home"),
            "LANG": "C.UTF-8",
            "DATABASE_URL": empty_db_url,
            "KALSHI_RUN_MODE": "rest",
            "DISCOVERY_SECONDS": "5",
            "BACKFILL_SECONDS": "5",
            **kalshi,
        }
        proc, output = start_supervisord(env)
        try:

            def markets_arrived() -> bool:
                try:
                    with psycopg.connect(empty_db_url, connect_timeout=5) as conn:
                        row = conn.execute("SELECT count(*) FROM markets").fetchone()
                        return bool(row and row[0] > 0)
                except psycopg.Error:
                    return False

            output.wait_for(markets_arrived, 120, "markets arriving in the database")
            assert "exited: migrate (exit status 0; expected)" in output.text
        finally:
            code = stop_supervisord(proc, output)
        assert code == 0
        assert "stopped: ingestor (exit status 0)" in output.text
        status = read_status(tmp_path / "home/run/supervisor-status.json")
        assert status is not None and status["roles"]["rest"]["state"] == "EXITED"
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=15)
        if sim.stdout is not None:
            sim.stdout.close()
