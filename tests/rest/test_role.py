"""The rest role end to end: its loops run against the simulator as the rest database user."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import trio

from ingestor.db.connect import Database
from ingestor.sim import open_sim
from roles import rest

from .conftest import rest_settings


def _progress(db_url: str) -> tuple[set[str], str | None, int]:
    with psycopg.connect(db_url) as conn:
        keys = {r[0] for r in conn.execute("SELECT key FROM ingest_state")}
        run = conn.execute("SELECT status FROM backfill_runs ORDER BY id DESC LIMIT 1").fetchone()
        candles = conn.execute("SELECT count(*) FROM market_candles").fetchone()
    return keys, run[0] if run else None, candles[0] if candles else 0


async def test_role_runs_discovery_backfill_and_repair_until_cancelled(
    role_url: Callable[[str], str], db_url: str
) -> None:
    async with open_sim(
        seed=2, markets=14, manual_clock=True, rate=100_000, burst=100_000, tick_rate=0
    ) as sim:
        settings = rest_settings(
            KALSHI_HOST=sim.rest_url,
            KALSHI_API_KEY_ID=sim.key_id,
            KALSHI_PRIVATE_KEY_PEM_PATH=str(sim.private_key_path),
            KALSHI_REST_RATE_PER_SEC="2000",
            KALSHI_REST_BURST="2000",
            CANDLE_PERIODS="60",
            DISCOVERY_SECONDS="3600",
            BACKFILL_SECONDS="3600",
            CLOSED_CLEANUP_SECONDS="3600",
        )
        db = Database(role_url("rest"), max_size=4).open()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(rest.main, settings, db)
                with trio.fail_after(60):
                    while True:
                        keys, run, candles = _progress(db_url)
                        if {
                            "last_discovery_ts",
                            "last_min_close_ts",
                        } <= keys and run == "completed":
                            break
                        await trio.sleep(0.1)
                nursery.cancel_scope.cancel()
        finally:
            db.close()
    assert candles > 0
    with psycopg.connect(db_url) as conn:
        active = conn.execute("SELECT count(*) FROM active_markets").fetchone()
        writers = conn.execute("SELECT DISTINCT updated_by FROM ingest_state").fetchall()
    assert active is not None and active[0] > 0
    assert writers == [("rest",)]
