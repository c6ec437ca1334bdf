"""Fixtures for the ws role: a quiet simulator, seeded active markets, the role in-process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio

from ingestor.config import WsSettings
from ingestor.db.connect import Database
from ingestor.kalshi.signing import generate_key_pair
from ingestor.sim import Sim, Tick, open_sim
from roles.ws import WsRole

KEY_ID = "ws-test-key"
TICK_COLUMNS = (
    "ticker, ts, price_dollars, yes_bid_dollars, yes_ask_dollars, yes_bid_size_fp, "
    "yes_ask_size_fp, last_trade_size_fp, volume_fp, open_interest_fp, dollar_volume, "
    "dollar_open_interest, extra"
)


@pytest.fixture(scope="session")
def sim_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """(private key file, public PEM), generated once for every simulator of the session."""
    private, public = generate_key_pair()
    path = tmp_path_factory.mktemp("ws-keys") / "sim.pem"
    path.write_bytes(private)
    os.chmod(path, 0o600)
    return path, public


@asynccontextmanager
async def quiet_sim(sim_keys: tuple[Path, bytes], **kw: Any) -> AsyncIterator[Sim]:
    """A simulator whose ticks come only from `emit_ticks` (real-time clock, no noise)."""
    options: dict[str, Any] = {
        "seed": 7, "markets": 14, "speed": 1.0, "tick_rate": 0, "rate": 0,
        "lifecycle_noise": False, "public_key_pem": sim_keys[1], "key_id": KEY_ID,
    }
    options.update(kw)
    async with open_sim(**options) as sim:
        yield sim


@pytest.fixture
async def sim(sim_keys: tuple[Path, bytes]) -> AsyncIterator[Sim]:
    async with quiet_sim(sim_keys) as s:
        yield s


def settings_for(sim: Sim, keys: tuple[Path, bytes], **overrides: Any) -> WsSettings:
    """WsSettings pointing at the simulator (values as a user would set them)."""
    values: dict[str, Any] = {
        "kalshi_api_key_id": KEY_ID,
        "kalshi_private_key_pem_path": str(keys[0]),
        "kalshi_host": sim.rest_url,
        "kalshi_ws_url": sim.ws_url,
        "ws_db_flush_seconds": 0.05,
        "ws_sub_refresh_seconds": 60,
    }
    values.update(overrides)
    return WsSettings.model_validate(values)


def seed_active(admin_url: str, sim: Sim, tickers: Iterable[str] | None = None) -> list[str]:
    """Insert events, markets and active_markets rows for (some of) the sim's active markets."""
    ex = sim.exchange
    chosen = list(ex.active_tickers if tickers is None else tickers)
    with psycopg.connect(admin_url) as conn:
        for t in chosen:
            m = ex.markets[t]
            close = datetime.fromtimestamp(m.close_ts, UTC)
            conn.execute("INSERT INTO events (event_ticker) VALUES (%s) ON CONFLICT DO NOTHING",
                         (m.event_ticker,))
            conn.execute("INSERT INTO markets (ticker, event_ticker, close_time) VALUES "
                         "(%s, %s, %s) ON CONFLICT DO NOTHING", (t, m.event_ticker, close))
            conn.execute("INSERT INTO active_markets (ticker, event_ticker, status, close_time) "
                         "VALUES (%s, %s, 'active', %s)", (t, m.event_ticker, close))
    return chosen


def unseed_active(admin_url: str, tickers: Iterable[str]) -> None:
    with psycopg.connect(admin_url) as conn:
        conn.execute("DELETE FROM active_markets WHERE ticker = ANY(%s)", (list(tickers),))


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


async def aquery(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return await trio.to_thread.run_sync(query, url, sql, params)


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 15.0
) -> None:
    """Poll `check` until it is true; fail after `timeout` seconds (never a timed assertion)."""
    with trio.fail_after(timeout):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await trio.sleep(0.02)


def expected_row(t: Tick, legacy: bool = False) -> tuple[Any, ...]:
    """The market_ticks values a sim tick must produce (independent of the code under test)."""
    c = Decimal(100)
    if legacy:
        return (
            t.ticker, datetime.fromtimestamp(t.ts_ms // 1000, UTC), Decimal(t.price) / c,
            Decimal(t.yes_bid) / c, Decimal(t.yes_ask) / c, None, None, None,
            Decimal(t.volume_cc // 100), Decimal(t.oi_cc // 100), t.notional // 10000,
            t.oi_cc * t.price // 10000, None,
        )
    return (
        t.ticker, datetime.fromtimestamp(t.ts_ms / 1000, UTC), Decimal(t.price) / c,
        Decimal(t.yes_bid) / c, Decimal(t.yes_ask) / c, Decimal(t.bid_size_cc) / c,
        Decimal(t.ask_size_cc) / c, Decimal(t.last_trade_cc) / c, Decimal(t.volume_cc) / c,
        Decimal(t.oi_cc) / c, t.notional // 10000, t.oi_cc * t.price // 10000, None,
    )


def stored_ticks(url: str) -> list[tuple[Any, ...]]:
    return query(url, f"SELECT {TICK_COLUMNS} FROM market_ticks")


def ticker_markets(sim: Sim) -> list[frozenset[str]]:
    """Market sets of the ticker subscriptions on the sim's open connections."""
    return [
        v.markets or frozenset()
        for views in sim.subscriptions().values() for v in views if v.channel == "ticker"
    ]


@asynccontextmanager
async def running_role(
    url: str, settings: WsSettings, **client_options: Any
) -> AsyncIterator[WsRole]:
    """The ws role running in this process as the ws database user; stopped like SIGTERM."""
    db = Database(url, max_size=4, name="ws-test")
    await trio.to_thread.run_sync(db.open)
    try:
        role = WsRole(settings, db, **client_options)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(role.run)
            yield role
            nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(db.close)
