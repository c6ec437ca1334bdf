"""The ws role against the simulator and a real PostgreSQL, logged in as the ws user."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from ingestor.db import ingest_state
from ingestor.errors import ConfigurationError
from ingestor.sim import Sim
from ingestor.stream.client import build_client
from ingestor.stream.sharding import Shard
from tests.ws.conftest import (
    aquery,
    eventually,
    expected_row,
    quiet_sim,
    running_role,
    seed_active,
    settings_for,
    stored_ticks,
    ticker_markets,
    unseed_active,
)


@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
async def test_a_known_stream_ends_as_exactly_that_set_of_rows(
    db_url: str, role_url: Callable[[str], str], sim_keys: tuple[Path, bytes], legacy: bool
) -> None:
    url = role_url("ws")
    async with quiet_sim(sim_keys, legacy=legacy) as sim:
        tickers = seed_active(db_url, sim)
        async with running_role(url, settings_for(sim, sim_keys)) as role:
            await eventually(lambda: ticker_markets(sim) == [frozenset(tickers)])
            sent = sim.emit_ticks(400)
            want = {expected_row(t, legacy) for t in sent}

            async def all_stored() -> bool:
                rows = await aquery(url, "SELECT count(*) FROM market_ticks")
                return rows[0][0] >= len(want)

            await eventually(all_stored)
            last = max(t.ts_ms for t in sent)
            if legacy:
                last = last // 1000 * 1000

            async def fresh() -> bool:
                rows = await aquery(url, "SELECT value FROM ingest_state WHERE key = "
                                         "'last_tick_ts'")
                return bool(rows) and ingest_state.parse_ts(rows[0][0]) == datetime.fromtimestamp(
                    last / 1000, UTC)

            await eventually(fresh)
            assert role.stats.unusable_ticks == 0
        rows = stored_ticks(url)
        assert len(rows) == len(set(rows)) == len(want)
        assert set(rows) == want
        quotes = await aquery(url, "SELECT ticker, ts, price_dollars, yes_bid_dollars, "
                                   "yes_ask_dollars FROM market_quotes_latest")
        newest = {}
        for t in sent:
            newest[t.ticker] = t
        assert {q[0]: q[2:] for q in quotes} == {
            k: (Decimal(t.price) / 100, Decimal(t.yes_bid) / 100, Decimal(t.yes_ask) / 100)
            for k, t in newest.items()
        }


async def test_subscriptions_follow_active_markets(
    db_url: str, role_url: Callable[[str], str], sim: Sim, sim_keys: tuple[Path, bytes]
) -> None:
    active = sim.exchange.active_tickers
    first, rest = active[:5], active[5:]
    seed_active(db_url, sim, first)
    settings = settings_for(sim, sim_keys, ws_sub_refresh_seconds=0.1, ws_batch_size=3)
    async with running_role(role_url("ws"), settings):
        await eventually(lambda: ticker_markets(sim) == [frozenset(first)])
        seed_active(db_url, sim, rest)
        await eventually(lambda: ticker_markets(sim) == [frozenset(active)])
        unseed_active(db_url, first[:3] + rest[:2])
        remaining = frozenset(active) - set(first[:3] + rest[:2])
        await eventually(lambda: ticker_markets(sim) == [remaining])
        unseed_active(db_url, remaining)
        await eventually(lambda: ticker_markets(sim) == [])
        # the lifecycle channel stays, for every market
        views = [v for vs in sim.subscriptions().values() for v in vs]
        assert [(v.channel, v.markets) for v in views] == [("market_lifecycle_v2", None)]


async def test_the_cap_keeps_the_soonest_closing_markets(
    db_url: str, role_url: Callable[[str], str], sim: Sim, sim_keys: tuple[Path, bytes]
) -> None:
    tickers = seed_active(db_url, sim)
    ex = sim.exchange
    soonest = sorted(tickers, key=lambda t: (ex.markets[t].close_ts, t))[:4]
    settings = settings_for(sim, sim_keys, max_active_tickers=4)
    async with running_role(role_url("ws"), settings):
        await eventually(lambda: ticker_markets(sim) == [frozenset(soonest)])


async def test_two_shards_cover_every_market_once_and_write_lifecycle_once(
    db_url: str, role_url: Callable[[str], str], sim: Sim, sim_keys: tuple[Path, bytes]
) -> None:
    url = role_url("ws")
    tickers = seed_active(db_url, sim)
    shards = [Shard(i, 2) for i in range(2)]
    async with (
        running_role(url, settings_for(sim, sim_keys, ws_shard_count=2, ws_shard_id=0)) as r0,
        running_role(url, settings_for(sim, sim_keys, ws_shard_count=2, ws_shard_id=1)) as r1,
    ):
        expected = [frozenset(t for t in tickers if s.owns(t)) for s in shards]
        await eventually(lambda: sorted(ticker_markets(sim), key=sorted) ==
                         sorted(expected, key=sorted))
        assert all(expected)
        sent = sim.emit_ticks(300)
        before = len(sim.exchange.lifecycle_messages)
        for t in tickers[:6]:
            sim.exchange.deactivate(t, 60)
        sim.advance(2 * 3600)  # reactivations, closes, results, settlements, new listings
        messages = sim.exchange.lifecycle_messages[before:]
        assert {m.type for m in messages} >= {"market_lifecycle_v2", "event_lifecycle"}

        async def done() -> bool:
            n = await aquery(url, "SELECT (SELECT count(*) FROM market_ticks), "
                                  "(SELECT count(*) FROM lifecycle_events)")
            return n[0] == (len(sent), len(messages))

        await eventually(done)
    assert {r[:2] for r in stored_ticks(url)} == {expected_row(t)[:2] for t in sent}
    roles = (r0, r1)
    assert sum(r.stats.ticks_written for r in roles) == len(sent)
    assert sum(r.stats.lifecycle_written for r in roles) == len(messages)
    for role, shard in zip(roles, shards, strict=True):
        owned = [m for m in messages if shard.owns(m.msg.get("market_ticker")
                                                   or m.msg["event_ticker"])]
        assert role.stats.lifecycle_written == len(owned)
        assert role.stats.ticks_already_stored == 0
    rows = await aquery(url, "SELECT msg_type, raw FROM lifecycle_events")
    def canon(kind: str, msg: dict[str, object]) -> tuple[str, str]:
        return kind, json.dumps(msg, sort_keys=True)

    assert sorted(canon(t, r) for t, r in rows) == sorted(canon(m.type, m.msg) for m in messages)


def test_missing_credentials_are_a_clear_configuration_error() -> None:
    from ingestor.config import WsSettings

    with pytest.raises(ConfigurationError, match="KALSHI_API_KEY_ID and "
                                                 "KALSHI_PRIVATE_KEY_PEM_PATH"):
        build_client(WsSettings())
    with pytest.raises(ConfigurationError, match="file not found"):
        build_client(WsSettings(kalshi_api_key_id="k", kalshi_private_key_pem_path="/nope.pem"))


async def test_ticks_keep_flowing_after_the_stream_is_idle(
    db_url: str, role_url: Callable[[str], str], sim: Sim, sim_keys: tuple[Path, bytes]
) -> None:
    url = role_url("ws")
    seed_active(db_url, sim)
    async with running_role(url, settings_for(sim, sim_keys)):
        await eventually(lambda: bool(ticker_markets(sim)))
        total = 0
        for _ in range(3):
            total += len(sim.emit_ticks(20))
            await trio.sleep(0.1)

        async def stored() -> bool:
            return (await aquery(url, "SELECT count(*) FROM market_ticks"))[0][0] == total

        await eventually(stored)
