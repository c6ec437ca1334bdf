"""`ingestor run` as a real program: signals, restarts after SIGKILL, logs, role selection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, SupervisorRun, base_env, python_child

StartSupervisor = Callable[..., SupervisorRun]

STOPS_ON_SIGTERM = python_child(
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
    "print('up', os.environ['SERVICE_ROLE'], flush=True)\n"
    "time.sleep(600)\n"
)
IGNORES_SIGTERM = python_child(
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ignoring SIGTERM', flush=True)\n"
    "time.sleep(600)\n"
)
FAST = ("--startsecs", "0.2", "--backoff-initial", "0.1", "--grace-seconds", "5")


def all_running(roles: set[str]) -> Callable[[dict[str, Any]], bool]:
    def check(status: dict[str, Any]) -> bool:
        states = {r: info["state"] for r, info in status["roles"].items()}
        return set(states) == roles and set(states.values()) == {"RUNNING"}

    return check


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie not yet reaped by init still answers kill(0); its state says it is dead.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] == "Z"


def test_sigterm_stops_children_and_exits_zero(start_supervisor: StartSupervisor) -> None:
    run = start_supervisor("--only", "rest,ws", *FAST, "--child-command", STOPS_ON_SIGTERM)
    status = run.wait_status(all_running({"rest", "ws"}))
    pids = [info["pid"] for info in status["roles"].values()]
    code, out, err = run.stop()
    assert code == 0, err
    assert all(pid_gone(p) for p in pids)
    assert "[rest] up rest" in out and "[ws] up ws" in out
    final = run.status()
    assert final is not None and final["stale"] is True
    assert {info["state"] for info in final["roles"].values()} == {"EXITED"}
    assert {info["last_exit_code"] for info in final["roles"].values()} == {0}


def test_sigint_stops_like_sigterm(start_supervisor: StartSupervisor) -> None:
    run = start_supervisor("--only", "worker", *FAST, "--child-command", STOPS_ON_SIGTERM)
    run.wait_status(all_running({"worker"}))
    run.proc.send_signal(signal.SIGINT)
    code, _, err = run.stop()
    assert code == 0, err


def test_child_ignoring_sigterm_is_killed_after_the_grace(
    start_supervisor: StartSupervisor,
) -> None:
    run = start_supervisor(
        "--only",
        "rest",
        "--startsecs",
        "0.2",
        "--grace-seconds",
        "1",
        "--child-command",
        IGNORES_SIGTERM,
    )
    status = run.wait_status(all_running({"rest"}))
    pid = status["roles"]["rest"]["pid"]
    code, _, err = run.stop()
    assert code == 0, err
    assert pid_gone(pid)
    final = run.status()
    assert final is not None
    assert final["roles"]["rest"]["last_exit_code"] == -signal.SIGKILL
    assert "SIGKILL" in err


def test_grandchildren_are_stopped_with_their_role(
    start_supervisor: StartSupervisor, tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    spawns_grandchild = python_child(
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('spawned', flush=True)\n"
        "time.sleep(600)\n"
    )
    run = start_supervisor("--only", "rest", *FAST, "--child-command", spawns_grandchild)
    run.wait_status(all_running({"rest"}))
    run.wait_status(lambda s: pidfile.exists() and pidfile.read_text() != "")
    grandchild = int(pidfile.read_text())
    code, _, err = run.stop()
    assert code == 0, err
    assert pid_gone(grandchild)


def test_sigkilled_child_is_replaced(start_supervisor: StartSupervisor) -> None:
    run = start_supervisor("--only", "rest,ws", *FAST, "--child-command", STOPS_ON_SIGTERM)
    status = run.wait_status(all_running({"rest", "ws"}))
    old_pid = status["roles"]["rest"]["pid"]
    ws_pid = status["roles"]["ws"]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    status = run.wait_status(
        lambda s: s["roles"]["rest"]["state"] == "RUNNING" and s["roles"]["rest"]["pid"] != old_pid
    )
    rest = status["roles"]["rest"]
    assert rest["restarts"] == 1
    assert rest["last_exit_code"] == -signal.SIGKILL
    assert status["roles"]["ws"]["pid"] == ws_pid  # the other role was left alone
    code, _, err = run.stop()
    assert code == 0, err


def test_bad_configuration_goes_fatal_once_and_exit_on_fatal_exits_1(
    start_supervisor: StartSupervisor,
) -> None:
    bad_config = python_child(
        "import sys\n"
        "print('invalid configuration for role rest:', flush=True)\n"
        "print('  KALSHI_HOST: must start with http:// or https://', flush=True)\n"
        "sys.exit(2)\n"
    )
    run = start_supervisor(
        "--only", "rest", *FAST, "--exit-on-fatal", "--child-command", bad_config
    )
    out, err = run.proc.communicate(timeout=20)
    assert run.proc.returncode == 1
    assert out.decode().count("KALSHI_HOST: must start with http") == 1
    assert "FATAL" in err.decode()
    final = run.status()
    assert final is not None
    assert final["roles"]["rest"]["state"] == "FATAL"
    assert final["roles"]["rest"]["restarts"] == 0
    assert final["roles"]["rest"]["last_error_line"].startswith("KALSHI_HOST")


def test_secrets_printed_by_a_child_never_reach_the_output(
    start_supervisor: StartSupervisor, tmp_path: Path
) -> None:
    leaky = python_child(
        "import os\n"
        "print('password is', os.environ.get('WEB_PORTAL_PASSWORD'), flush=True)\n"
        "print('db', os.environ.get('DATABASE_URL'), flush=True)\n"
        "print('raw db password', os.environ['DATABASE_URL'].split(':')[2].split('@')[0], flush=True)\n"
        "import json; print(json.dumps({'msg': 'key ' + os.environ.get('WEB_PORTAL_SECRET_KEY', '')}), flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    env = base_env(
        tmp_path,
        WEB_PORTAL_PASSWORD="Pa55word-portal",
        WEB_PORTAL_SECRET_KEY="k" * 40,
        DATABASE_URL_PORTAL="postgresql://kalshi_portal_user:db-Secret-77@db/kalshi",
    )
    for fmt in ("text", "json"):
        run = start_supervisor(
            "--only", "portal", *FAST, "--log-format", fmt, "--child-command", leaky, env=env
        )
        run.wait_status(all_running({"portal"}))
        run.wait_status(lambda s: s["roles"]["portal"]["state"] == "RUNNING")
        code, out, err = run.stop()
        assert code == 0, err
        assert "password is ***" in out or '"password is ***"' in out
        for secret in ("Pa55word-portal", "db-Secret-77", "k" * 40):
            assert secret not in out
            assert secret not in err
        if fmt == "json":
            records = [json.loads(line) for line in out.splitlines()]
            assert {r["role"] for r in records} == {"portal"}
            assert {"msg": "key ***"} in [r["line"] for r in records]


def test_kalshi_run_mode_selects_the_role_when_only_is_absent(
    start_supervisor: StartSupervisor, tmp_path: Path
) -> None:
    env = base_env(tmp_path, KALSHI_RUN_MODE="ws")
    run = start_supervisor(*FAST, "--child-command", STOPS_ON_SIGTERM, env=env)
    status = run.wait_status(all_running({"ws"}))
    assert set(status["roles"]) == {"ws"}
    assert run.stop()[0] == 0


def test_env_file_variables_reach_the_children(
    start_supervisor: StartSupervisor, tmp_path: Path
) -> None:
    env_file = tmp_path / "run.env"
    env_file.write_text("# test\nDISCOVERY_SECONDS=123\nAWS_SECRET_ACCESS_KEY=nobody\n")
    dumper = python_child(
        "import os, time\n"
        "print('discovery', os.environ.get('DISCOVERY_SECONDS'), flush=True)\n"
        "print('aws', os.environ.get('AWS_SECRET_ACCESS_KEY'), flush=True)\n"
        "time.sleep(600)\n"
    )
    run = start_supervisor(
        "--only", "rest", *FAST, "--env-file", str(env_file), "--child-command", dumper
    )
    run.wait_status(all_running({"rest"}))
    _, out, _ = run.stop()
    assert "[rest] discovery 123" in out
    assert "[rest] aws None" in out


@pytest.mark.parametrize(
    ("args", "env_extra", "message"),
    [
        (
            ("--only", "rest,nope"),
            {},
            "unknown role 'nope'; valid: all, rest, ws, worker, rag, portal",
        ),
        ((), {"KALSHI_RUN_MODE": "bogus"}, "KALSHI_RUN_MODE: unknown role 'bogus'"),
        (("--only", "rest", "--backoff-initial", "5", "--backoff-max", "1"), {}, "--backoff-max"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_message(
    tmp_path: Path, args: tuple[str, ...], env_extra: dict[str, str], message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ingestor", "run", *args, "--child-command", "true"],
        env=base_env(tmp_path, **env_extra),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_second_supervisor_on_the_same_status_file_is_refused(
    start_supervisor: StartSupervisor, tmp_path: Path
) -> None:
    run = start_supervisor("--only", "rest", *FAST, "--child-command", STOPS_ON_SIGTERM)
    run.wait_status(all_running({"rest"}))
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingestor",
            "run",
            "--only",
            "ws",
            "--status-file",
            str(run.status_path),
            "--child-command",
            "true",
        ],
        env=base_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 2
    assert "belongs to a running supervisor" in second.stderr
    assert run.stop()[0] == 0


def test_log_format_json_from_the_environment(
    start_supervisor: StartSupervisor, tmp_path: Path
) -> None:
    env = base_env(tmp_path, LOG_FORMAT="json")
    run = start_supervisor("--only", "rag", *FAST, "--child-command", STOPS_ON_SIGTERM, env=env)
    run.wait_status(all_running({"rag"}))
    code, out, err = run.stop()
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert {"role": "rag", "line": "up rag"} in [
        {k: r[k] for k in ("role", "line")} for r in records
    ]
    assert all(r["ts"].endswith("Z") for r in records)
    assert all(json.loads(line)["level"] for line in err.splitlines())  # supervisor logs too
