"""`ingestor demo` on a fresh INGESTOR_HOME: data arrives, keys go fresh, Ctrl-C stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from ingestor import contract
from ingestor.db.embedded import start_embedded, with_database

pytestmark = pytest.mark.slow


@pytest.fixture
def home(ingestor_home: Path) -> Path:
    return ingestor_home


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    env.update({"INGESTOR_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    return env


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("market_ticks", "market_candles", "lifecycle_events", "active_markets")
        }


def test_demo_fills_every_table_keeps_keys_fresh_and_stops_on_ctrl_c(home: Path) -> None:
    env = _env(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestor", "demo", "--summary-every", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    out_lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out_lines.append(line)
            if "press Ctrl-C to stop" in line:
                break
        assert any("[demo] starting roles: rest, ws" in ln for ln in out_lines), out_lines
        url = with_database(start_embedded(home / "pg"), "kalshi_demo")
        running = ("rest", "ws")
        wanted_keys = {k for r in running for k in contract.role_contract(r).state_keys}
        status: dict[str, object] = {}
        counts: dict[str, int] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            result = subprocess.run(
                [sys.executable, "-m", "ingestor", "status", "--json"],
                env={**env, "DATABASE_URL": url}, capture_output=True, text=True, timeout=60,
            )
            assert result.returncode == 0, result.stderr
            status = json.loads(result.stdout)
            fresh = {r["key"] for r in status["ingest_state"] if r["verdict"] == "fresh"}
            counts = _counts(url)
            if wanted_keys <= fresh and all(counts[t] > 0 for t in counts):
                break
            time.sleep(2)
        fresh = {r["key"] for r in status["ingest_state"] if r["verdict"] == "fresh"}
        assert wanted_keys <= fresh, status
        assert all(n > 0 for n in counts.values()), counts
        roles = status["supervisor"]["roles"]  # type: ignore[index]
        assert {r: roles[r]["state"] for r in running} == {"rest": "RUNNING", "ws": "RUNNING"}
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        out_lines.append(rest)
    text = "".join(out_lines)
    assert proc.returncode == 0, text[-3000:]
    assert "[demo] stopped" in text
    assert "Traceback" not in text
