"""SIGTERM to the real `ingestor role ws` process loses nothing it received."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import trio

from ingestor.db import ws_gaps
from ingestor.sim import Sim
from tests.ws.conftest import (
    KEY_ID,
    aquery,
    eventually,
    expected_row,
    running_role,
    seed_active,
    settings_for,
    stored_ticks,
    ticker_markets,
)

REPO = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(r"ws progress received=(\d+)")


class Output:
    """Lines of a child's merged output, kept for assertions and for the failure report."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def collect(self, stream: trio.abc.ReceiveStream) -> None:
        pending = b""
        async for chunk in stream:
            pending += chunk
            *done, pending = pending.split(b"\n")
            self.lines.extend(d.decode("utf-8", "replace") for d in done)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def received(self) -> int:
        counts = [int(m.group(1)) for line in self.lines if (m := PROGRESS.search(line))]
        return max(counts, default=0)


@pytest.mark.slow
async def test_sigterm_mid_stream_flushes_every_received_tick(
    db_url: str, role_url: Callable[[str], str], sim: Sim, sim_keys: tuple[Path, bytes]
) -> None:
    url = role_url("ws")
    tickers = frozenset(seed_active(db_url, sim))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": url,
        "KALSHI_HOST": sim.rest_url,
        "KALSHI_WS_URL": sim.ws_url,
        "KALSHI_API_KEY_ID": KEY_ID,
        "KALSHI_PRIVATE_KEY_PEM_PATH": str(sim_keys[0]),
        # Only the shutdown flush can write: the timer and the size trigger never fire.
        "WS_DB_FLUSH_SECONDS": "600",
        "WS_DB_BATCH_SIZE": "1000000",
        "LOG_LEVEL": "DEBUG",
    }
    out = Output()
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "ingestor", "role", "ws"], env=env, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        async with trio.open_nursery() as nursery:
            assert proc.stdout is not None
            nursery.start_soon(out.collect, proc.stdout)
            await eventually(lambda: ticker_markets(sim) == [tickers], timeout=30)
            sent = sim.emit_ticks(500)
            sent += sim.emit_ticks(250)
            # the stream has stopped; wait until the role has taken in all of it
            await eventually(lambda: out.received() == len(sent))
            assert (await aquery(url, "SELECT count(*) FROM market_ticks"))[0][0] == 0
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                code = await proc.wait()
            nursery.cancel_scope.cancel()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    log = "\n".join(out.lines[-40:])
    assert code == 0, log
    assert out.has("ws flushing before exit"), log
    rows = stored_ticks(url)
    assert len(rows) == len(sent)
    assert set(rows) == {expected_row(t) for t in sent}
    with psycopg.connect(url) as conn:
        found = {g.reason: g for g in ws_gaps.list_gaps(conn)}
    assert found["startup"].ended_at is not None
    assert found["shutdown"].ended_at is None

    # the next start closes the gap the shutdown left open, once it is subscribed again
    async with running_role(url, settings_for(sim, sim_keys)):
        await eventually(lambda: ticker_markets(sim) == [tickers])

        async def closed() -> bool:
            rows = await aquery(url, "SELECT count(*) FROM ws_gaps WHERE ended_at IS NULL "
                                     "AND reason = 'shutdown'")
            return rows[0][0] == 0

        await eventually(closed)
    with psycopg.connect(url) as conn:
        reasons = [g.reason for g in ws_gaps.list_gaps(conn)]
    assert reasons.count("startup") == 1  # the restart adopted the open gap instead
