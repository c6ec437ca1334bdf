"""End to end: simulator -> `ingestor role ws` -> PostgreSQL; ticks/s, latency and memory.

    .venv/bin/python bench/bench_ws_end_to_end.py [--tick-rate 12000] [--markets 500]
                                                  [--warmup 5] [--seconds 20]

Three processes, as in production: the simulator (`python -m ingestor.sim`, offering
--tick-rate ticker frames per second over --markets open markets), the ws role
(`python -m ingestor role ws`, logged in as the ws database user) and an embedded PostgreSQL
started in a temporary directory. This process seeds active_markets, waits for the role to
subscribe, lets it warm up, then measures:

  ticks/s        rows committed whose receive time falls in the measured window, per second
  latency        receive-to-commit percentiles from the role's own histogram (its exit line)
  memory         the role's resident set size, sampled every 0.25 s (max over the window)

Targets on a 2-core machine: >= 10,000 ticks/s, p99 < 500 ms, RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import psycopg

from ingestor import contract
from ingestor.db import grants, migrations, partitions
from ingestor.db.embedded import start_embedded, with_database, with_user

REPO = Path(__file__).resolve().parents[1]
TARGET_RATE = 10_000
TARGET_P99_MS = 500
TARGET_RSS_MB = 150


def start_sim(markets: int, tick_rate: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The simulator in its own process; returns it and the KALSHI_* variables it prints."""
    cmd = [sys.executable, "-m", "ingestor.sim", "--port", "0", "--speed", "1", "--rate", "0",
           "--markets", str(markets), "--tick-rate", str(tick_rate), "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    found: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("export "):
            key, _, value = line[len("export "):].strip().partition("=")
            found[key] = value.strip("'\"")
        if "KALSHI_PRIVATE_KEY_PEM_PATH" in found and "KALSHI_WS_URL" in found:
            break
    return proc, found


def open_markets(rest_url: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    cursor = ""
    with httpx.Client(base_url=rest_url, timeout=30) as client:
        while True:
            params = {"status": "open", "limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = client.get("/markets", params=params).json()
            out.extend(page["markets"])
            cursor = page.get("cursor") or ""
            if not cursor:
                return out


def seed(url: str, markets: list[dict[str, object]]) -> None:
    with psycopg.connect(url) as conn:
        for m in markets:
            conn.execute("INSERT INTO events (event_ticker) VALUES (%s) ON CONFLICT DO NOTHING",
                         (m["event_ticker"],))
            conn.execute("INSERT INTO markets (ticker, event_ticker, close_time) "
                         "VALUES (%s, %s, %s)", (m["ticker"], m["event_ticker"],
                                                 m["close_time"]))
            conn.execute("INSERT INTO active_markets (ticker, event_ticker, status, close_time) "
                         "VALUES (%s, %s, 'active', %s)", (m["ticker"], m["event_ticker"],
                                                           m["close_time"]))


class Lines(threading.Thread):
    """Collects a child's output lines."""

    def __init__(self, stream: object) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []

    def run(self) -> None:
        for line in self.stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            time.sleep(0.05)
        raise TimeoutError(f"no {text!r} in the role's output:\n" + "\n".join(self.lines[-30:]))


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tick-rate", type=float, default=12_000)
    ap.add_argument("--markets", type=int, default=500)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-ws-"))
    os.chmod(tmp, 0o755)  # noqa: S103 - pgserver runs postgres as its own user when root
    sim: subprocess.Popen[str] | None = None
    role: subprocess.Popen[str] | None = None
    try:
        admin = start_embedded(tmp / "pg", cleanup="stop")
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS bench_ws WITH (FORCE)")
            c.execute("CREATE DATABASE bench_ws")
        url = with_database(admin, "bench_ws")
        with psycopg.connect(url, autocommit=True) as c:
            migrations.migrate(c)
            partitions.ensure_ahead(c, 1)
            grants.apply_roles(c)
            grants.ensure_login_user(c, "ws", password="bench-ws-pw")
        ws_url = with_user(url, contract.db_login_user("ws"), "bench-ws-pw")

        sim, kalshi = start_sim(args.markets, args.tick_rate)
        markets = open_markets(kalshi["KALSHI_HOST"])
        seed(url, markets)
        env = {
            "PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONUNBUFFERED": "1", "DATABASE_URL": ws_url, "LOG_LEVEL": "INFO", **kalshi,
        }
        role = subprocess.Popen([sys.executable, "-m", "ingestor", "role", "ws"], env=env,
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        out = Lines(role.stdout)
        out.start()
        out.wait_for("ws synced", 60)
        proc = psutil.Process(role.pid)
        time.sleep(args.warmup)
        t0 = datetime.now(UTC)
        start = time.monotonic()
        rss_max = 0
        cpu0 = proc.cpu_times()
        while time.monotonic() - start < args.seconds:
            rss_max = max(rss_max, proc.memory_info().rss)
            time.sleep(0.25)
        t1 = datetime.now(UTC)
        cpu1 = proc.cpu_times()
        time.sleep(1.0)  # let the window's last batches commit
        role.send_signal(signal.SIGTERM)
        role.wait(timeout=60)
        out.join(timeout=5)
        final = fields(out.wait_for("ws role stopped", 5))
        with psycopg.connect(url) as c:
            row = c.execute("SELECT count(*) FROM market_ticks WHERE received_at >= %s "
                            "AND received_at < %s", (t0, t1)).fetchone()
            gaps = c.execute("SELECT reason, count(*) FROM ws_gaps GROUP BY reason "
                             "ORDER BY reason").fetchall()
        window = (t1 - t0).total_seconds()
        rate = (row[0] if row else 0) / window
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / window
    finally:
        for p in (role, sim):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        try:
            import pgserver

            pgserver.get_server(tmp / "pg").cleanup()
        except Exception as exc:
            print(f"(embedded server cleanup: {exc})")
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"offered {args.tick_rate:,.0f} ticks/s over {len(markets)} markets; "
          f"warmup {args.warmup:.0f}s, window {window:.1f}s")
    print(f"committed          {rate:10,.0f} ticks/s   (target >= {TARGET_RATE:,})")
    print(f"latency p50        {final.get('latency_p50_ms')} ms")
    print(f"latency p99        {final.get('latency_p99_ms')} ms   (target < {TARGET_P99_MS})")
    print(f"latency max        {final.get('latency_max_ms')} ms")
    print(f"role RSS max       {rss_max / 2**20:10.1f} MB   (target < {TARGET_RSS_MB})")
    print(f"role CPU           {cpu * 100:10.0f} % of one core")
    print(f"role totals        received={final.get('received')} written={final.get('written')} "
          f"dropped={final.get('dropped')} malformed={final.get('malformed')} "
          f"reconnects={final.get('reconnects')} batches={final.get('batches')}")
    print(f"ws_gaps            {', '.join(f'{r}={n}' for r, n in gaps) or 'none'}")


if __name__ == "__main__":
    main()
