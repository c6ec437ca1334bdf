"""Faults mid-stream: the data stays exact, and every window the shard could not see is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import trio

from ingestor.db import ws_gaps
from ingestor.sim import Sim
from tests.ws.conftest import (
    aquery,
    eventually,
    expected_row,
    running_role,
    seed_active,
    settings_for,
    stored_ticks,
    ticker_markets,
)


async def count_ticks(url: str) -> int:
    return (await aquery(url, "SELECT count(*) FROM market_ticks"))[0][0]


def gaps(url: str) -> list[ws_gaps.StoredGap]:
    with psycopg.connect(url) as conn:
        return ws_gaps.list_gaps(conn)


async def test_drops_duplicates_malformed_frames_and_error_25_leave_exact_data(
    db_url: str, role_url: Callable[[str], str], sim: Sim, sim_keys: tuple[Path, bytes]
) -> None:
    url = role_url("ws")
    tickers = frozenset(seed_active(db_url, sim))
    want: list[tuple[object, ...]] = []

    async def stream(n: int, lost: int = 0) -> None:
        sim.step()  # deliver anything pending first, so armed faults hit these ticks
        sent = sim.emit_ticks(n)
        want.extend(expected_row(t) for t in sent[lost:])
        await eventually(lambda: _is(url, len(want)))

    async with running_role(url, settings_for(sim, sim_keys)) as role:
        await eventually(lambda: ticker_markets(sim) == [tickers])
        await stream(50)

        sim.faults.duplicate_frames(10)
        await stream(50)
        assert role.client.stats.duplicates >= 10

        sim.faults.malformed_frames(5)
        await stream(50, lost=5)
        assert role.client.stats.malformed == 5

        [before] = sim.subscriptions().values()
        old_sid = next(v.sid for v in before if v.channel == "ticker")
        assert sim.faults.ws_error(25) == 1
        await eventually(lambda: any(v.channel == "ticker" and v.sid != old_sid
                                     and v.markets == tickers
                                     for vs in sim.subscriptions().values() for v in vs))
        await stream(50)

        [old_conn] = sim.subscriptions()
        assert sim.faults.drop_ws_connections() == 1
        await eventually(lambda: any(cid != old_conn and any(
            v.channel == "ticker" and v.markets == tickers for v in vs)
            for cid, vs in sim.subscriptions().items()))
        await stream(50)

        async def recorded() -> bool:
            found = await trio.to_thread.run_sync(gaps, url)
            return {g.reason for g in found if g.ended_at} >= {
                "startup", "subscription_lost", "disconnected"}

        await eventually(recorded)
    rows = stored_ticks(url)
    assert len(rows) == len(set(rows)) == len(want) == 245
    assert set(rows) == set(want)
    found = {g.reason: g for g in gaps(url)}
    for reason in ("subscription_lost", "disconnected"):
        gap = found[reason]
        assert gap.ended_at is not None and gap.started_at <= gap.ended_at
        assert set(gap.markets) == tickers and gap.market_count == len(tickers)
        assert (gap.shard_id, gap.shard_count) == (0, 1)
    assert "code=25" in found["subscription_lost"].detail["client_reason"]
    assert found["shutdown"].ended_at is None


async def _is(url: str, n: int) -> bool:
    return await count_ticks(url) == n


class StallingProxy:
    """A TCP relay in front of the simulator that can go silent on its open connections."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.generation = 0
        self.connections = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    def stall_open_connections(self) -> None:
        """Existing connections stop passing bytes either way (the sockets stay open)."""
        self.generation += 1

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        generation = self.generation
        upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)

        async def pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
            try:
                while data := await src.receive_some(65536):
                    if self.generation != generation:
                        await trio.sleep_forever()
                    await dst.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            await trio.aclose_forcefully(dst)

        async with client, upstream, trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, upstream)
            nursery.start_soon(pump, upstream, client)


@asynccontextmanager
async def stalling_proxy(sim: Sim) -> AsyncIterator[StallingProxy]:
    proxy = StallingProxy(sim.port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        yield proxy
        nursery.cancel_scope.cancel()


async def test_a_silent_connection_is_replaced_and_recorded_as_stale(
    db_url: str, role_url: Callable[[str], str], sim: Sim, sim_keys: tuple[Path, bytes]
) -> None:
    url = role_url("ws")
    tickers = frozenset(seed_active(db_url, sim))
    async with stalling_proxy(sim) as proxy:
        settings = settings_for(sim, sim_keys, ws_stale_seconds=1,
                                kalshi_ws_url=f"ws://127.0.0.1:{proxy.port}/trade-api/ws/v2")
        # a short close-handshake wait: the stalled peer never answers it
        async with running_role(url, settings, disconnect_timeout=0.5) as role:
            await eventually(lambda: ticker_markets(sim) == [tickers])
            sent = sim.emit_ticks(20)
            await eventually(lambda: _is(url, 20))
            stalled_at = datetime.now(UTC)
            proxy.stall_open_connections()
            await eventually(lambda: proxy.connections == 2 and role.client.connected
                             and len(role.client.subscribed_markets()) == len(tickers))
            sent += sim.emit_ticks(20)
            await eventually(lambda: _is(url, 40))
    assert set(stored_ticks(url)) == {expected_row(t) for t in sent}
    [gap] = [g for g in gaps(url) if g.reason not in ("startup", "shutdown")]
    assert gap.reason == "stale" and "no frame" in gap.detail["client_reason"]
    assert gap.started_at <= stalled_at < gap.ended_at
    assert set(gap.markets) == tickers


async def test_a_slow_database_bounds_the_buffer_and_records_what_it_drops(
    db_url: str, role_url: Callable[[str], str], sim: Sim, sim_keys: tuple[Path, bytes]
) -> None:
    url = role_url("ws")
    tickers = frozenset(seed_active(db_url, sim))
    settings = settings_for(sim, sim_keys, ws_queue_maxsize=100, ws_db_batch_size=40)
    blocker = psycopg.connect(db_url)
    try:
        async with running_role(url, settings) as role:
            await eventually(lambda: ticker_markets(sim) == [tickers])
            await eventually(lambda: not role.buffer.has_work and role.buffer.inflight == 0)
            # an exclusive lock makes every batch transaction wait: the database is "slow"
            blocker.execute("LOCK TABLE market_quotes_latest IN ACCESS EXCLUSIVE MODE")
            sent = sim.emit_ticks(300)
            await eventually(lambda: role.stats.ticks_received == 300)
            held = role.buffer.pending + role.buffer.inflight
            assert held <= 100
            assert role.buffer.counters.dropped_ticks == 300 - held
            blocker.rollback()
            await eventually(lambda: role.stats.ticks_written == held)

            async def recorded() -> bool:
                found = await trio.to_thread.run_sync(gaps, url)
                return any(g.reason == "dropped" and g.ended_at is not None for g in found)

            await eventually(recorded)
    finally:
        blocker.close()
    rows = stored_ticks(url)
    assert set(rows) <= {expected_row(t) for t in sent}
    [dropped] = [g for g in gaps(url) if g.reason == "dropped"]
    assert len(rows) + dropped.dropped_ticks == 300
    kept = {r[0] for r in rows}
    lost_markets = {t.ticker for t in sent} - kept
    assert lost_markets <= set(dropped.markets) <= tickers
    assert dropped.ended_at is not None and dropped.started_at <= dropped.ended_at
