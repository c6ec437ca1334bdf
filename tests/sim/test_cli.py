"""`ingestor sim` command line: arguments, printed endpoints, key handling, clean shutdown."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ingestor.kalshi.signing import Signer
from ingestor.sim.cli import main


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestor.sim", "--port", "0", "--markets", "5",
         "--history-hours", "2", "--log-level", "WARNING", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    found: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("export "):
            key, _, value = line[len("export "):].strip().partition("=")
            found[key] = value
        if "KALSHI_API_KEY_ID" in found and ("--public-key" in args
                                             or "KALSHI_PRIVATE_KEY_PEM_PATH" in found):
            break
    return proc, found


def stop(proc: subprocess.Popen[str], sig: int) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_prints_endpoints_and_exits_cleanly(sig: int) -> None:
    proc, env = start("--fault", "503:1", "--key-id", "cli-key")
    try:
        assert env["KALSHI_API_KEY_ID"] == "cli-key"
        assert env["KALSHI_HOST"].endswith("/trade-api/v2")
        assert env["KALSHI_WS_URL"].startswith("ws://127.0.0.1:")
        key_path = Path(env["KALSHI_PRIVATE_KEY_PEM_PATH"])
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        signer = Signer.from_file("cli-key", key_path)
        with httpx.Client(base_url=env["KALSHI_HOST"]) as client:
            assert client.get("/exchange/status").status_code == 503
            path = "/trade-api/v2/markets"
            r = client.get("/markets", headers=signer.headers("GET", path))
            assert r.status_code == 200 and len(r.json()["markets"]) > 0
    finally:
        rc = stop(proc, sig)
    assert rc == 0
    assert not key_path.exists() and not key_path.parent.exists()


def test_cli_with_given_public_key(tmp_path: Path, key_pair: tuple[bytes, bytes]) -> None:
    pem = tmp_path / "pub.pem"
    pem.write_bytes(key_pair[1])
    proc, env = start("--public-key", str(pem))
    try:
        assert "KALSHI_PRIVATE_KEY_PEM_PATH" not in env
        assert len(env["KALSHI_API_KEY_ID"]) == 36
    finally:
        assert stop(proc, signal.SIGINT) == 0


@pytest.mark.parametrize("argv", [
    ["--host", "10.1.2.3"],
    ["--markets", "0"],
    ["--speed", "0"],
    ["--fault", "teleport:1"],
    ["--public-key", "/nonexistent/key.pem"],
    ["--port", "not-a-port"],
])
def test_cli_rejects_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err
