"""`ingestor health` against a real database, logged in as the role's own user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from ingestor.db import ingest_state
from ingestor.guardrails import Guardrails
from ingestor.supervisor.health import read_state_from_db

from .conftest import REPO

OFF = Guardrails(enabled=False, role=None)


def health(tmp_path: Path, role: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "INGESTOR_HOME": str(tmp_path / "home"),
        f"DATABASE_URL_{role.upper()}": url,
    }
    return subprocess.run(
        [sys.executable, "-m", "ingestor", "health", role, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_health_reads_ingest_state_as_the_role(
    role_url: Callable[[str], str], tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(role_url("rest")) as conn:
        ingest_state.write(conn, "last_discovery_ts", now, "rest", OFF)
    entries = read_state_from_db("rest", {"DATABASE_URL": role_url("rest")})
    assert entries["last_discovery_ts"].updated_by == "rest"

    missing = health(tmp_path, "rest", role_url("rest"), "--json")
    assert missing.returncode == 1, missing.stderr
    verdicts = {k["key"]: k["verdict"] for k in json.loads(missing.stdout)["roles"][0]["keys"]}
    assert verdicts == {"last_discovery_ts": "fresh", "last_min_close_ts": "missing"}

    with psycopg.connect(role_url("rest")) as conn:
        ingest_state.write(conn, "last_min_close_ts", now - timedelta(days=3), "rest", OFF)
    fresh = health(tmp_path, "rest", role_url("rest"))
    assert fresh.returncode == 0, fresh.stderr
    assert "rest: healthy" in fresh.stdout

    strict = health(tmp_path, "rest", role_url("rest"), "--max-age", "last_discovery_ts=0")
    assert strict.returncode == 1
    assert "STALE" in strict.stderr


def test_unreachable_database_is_unhealthy_with_the_password_masked(tmp_path: Path) -> None:
    result = health(tmp_path, "ws", "postgresql://u:Hidden-Pw-9@127.0.0.1:1/x")
    assert result.returncode == 1
    assert "cannot read ingest_state" in result.stderr
    assert "Hidden-Pw-9" not in result.stderr + result.stdout
