"""WS client convergence, reconnects and liveness against an in-memory server, on mock time."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric import rsa

from ingestor.kalshi.errors import WSConnectionError
from ingestor.kalshi.retry import Backoff
from ingestor.kalshi.signing import HEADER_SIGNATURE, HEADER_TIMESTAMP, Signer, verify
from ingestor.kalshi.ws import ConnectionEvent, KalshiWSClient, open_ws_client
from ingestor.kalshi.ws_protocol import DataMessage, Ticker
from tests.kalshi.fake_ws import FakeServer

URL = "wss://ws.test/trade-api/ws/v2"


@asynccontextmanager
async def running(server: FakeServer, **options: Any) -> AsyncIterator[KalshiWSClient]:
    options.setdefault("backoff", Backoff(base=1, factor=2, cap=8, jitter=0))
    options.setdefault("liveness_timeout", 30)
    options.setdefault("reply_timeout", 5)
    async with open_ws_client(
        URL, options.pop("signer", None), connect=server.connect, **options
    ) as client:
        yield client


async def events(client: KalshiWSClient, kinds: set[str], n: int = 1) -> list[ConnectionEvent]:
    """Collect the next `n` connection events of the given kinds (skipping data)."""
    out: list[ConnectionEvent] = []
    while len(out) < n:
        item = await client.receive()
        if isinstance(item, ConnectionEvent) and item.kind in kinds:
            out.append(item)
    return out


async def until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await trio.sleep(0.01)


TICKERS = [f"M{i}" for i in range(7)]


async def test_subscribes_lifecycle_and_ticker_markets_in_batches(autojump_clock):
    server = FakeServer()
    async with running(server, batch_size=3) as client:
        await client.set_markets(TICKERS)
        await client.wait_synced()
        conn = server.current
        subscribes = conn.commands_named("subscribe")
        assert [s["params"]["channels"] for s in subscribes] == [
            ["market_lifecycle_v2"],
            ["ticker"],
        ]
        assert "market_tickers" not in subscribes[0]["params"]
        assert len(subscribes[1]["params"]["market_tickers"]) == 3
        adds = conn.commands_named("update_subscription")
        assert [len(a["params"]["market_tickers"]) for a in adds] == [3, 1]
        assert conn.markets("ticker") == set(TICKERS)
        assert conn.markets("market_lifecycle_v2") is None
        assert client.subscribed_markets() == frozenset(TICKERS)
        ids = [c["id"] for c in conn.commands]
        assert ids == list(range(1, len(ids) + 1))
        listed = await client.list_subscriptions()
        assert sorted(s.channel for s in listed) == ["market_lifecycle_v2", "ticker"]


async def test_changed_market_set_is_diffed_adds_before_deletes(autojump_clock):
    server = FakeServer()
    async with running(server, batch_size=2) as client:
        await client.set_markets(["A", "B", "C"])
        await client.wait_synced()
        conn = server.current
        sid = conn.sid_of("ticker")
        before = len(conn.commands)
        await client.set_markets(["C", "D", "E"])
        await client.wait_synced()
        later = conn.commands[before:]
        assert [
            (c["cmd"], c["params"]["action"], c["params"]["market_tickers"]) for c in later
        ] == [
            ("update_subscription", "add_markets", ["D", "E"]),
            ("update_subscription", "delete_markets", ["A", "B"]),
        ]
        assert conn.markets() == {"C", "D", "E"}
        assert conn.sid_of("ticker") == sid  # updated in place, not resubscribed


async def test_replacing_every_market_never_leaves_an_empty_filter(autojump_clock):
    server = FakeServer()
    async with running(server, batch_size=10) as client:
        await client.set_markets(["A"])
        await client.wait_synced()
        conn = server.current
        await client.set_markets(["B"])
        await client.wait_synced()
        actions = [c["params"]["action"] for c in conn.commands_named("update_subscription")]
        assert actions == ["add_markets", "delete_markets"]
        assert conn.markets() == {"B"}


async def test_empty_market_set_unsubscribes_the_ticker_channel(autojump_clock):
    server = FakeServer()
    async with running(server) as client:
        await client.set_markets(["A", "B"])
        await client.wait_synced()
        conn = server.current
        await client.set_markets([])
        await client.wait_synced()
        assert conn.sid_of("ticker") is None
        assert conn.sid_of("market_lifecycle_v2") is not None
        assert len(conn.commands_named("unsubscribe")) == 1
        # and no subscription without markets was ever made for the ticker channel
        assert all(
            "market_tickers" in c["params"]
            for c in conn.commands_named("subscribe")
            if c["params"]["channels"] == ["ticker"]
        )


async def test_unknown_markets_are_set_aside_even_when_the_server_does_not_name_them(
    autojump_clock,
):
    server = FakeServer()
    server.unknown = {"BAD1", "BAD2"}
    server.name_unknown = False
    async with running(server, batch_size=3) as client:
        await client.set_markets(["A", "BAD1", "B", "C", "BAD2", "D"])
        await client.wait_synced()
        assert server.current.markets() == {"A", "B", "C", "D"}
        assert client.wanted_markets == {"A", "BAD1", "B", "C", "BAD2", "D"}
        assert client.stats.errors_by_code[16] >= 2


async def test_named_unknown_market_is_dropped_from_its_batch(autojump_clock):
    server = FakeServer()
    server.unknown = {"BAD"}
    async with running(server, batch_size=10) as client:
        await client.set_markets(["A", "BAD", "B"])
        await client.wait_synced()
        assert server.current.markets() == {"A", "B"}
        assert client.stats.errors_by_code[16] == 1


async def test_rejected_markets_are_retried_later(autojump_clock):
    server = FakeServer()
    server.unknown = {"LATE"}
    async with running(server, retry_rejected_after=60) as client:
        await client.set_markets(["A", "LATE"])
        await client.wait_synced()
        assert server.current.markets() == {"A"}
        server.unknown = set()  # the market now exists
        await trio.sleep(61)
        await until(lambda: server.current.markets() == {"A", "LATE"})


async def test_drop_reconnects_with_fresh_subscriptions_and_reports_the_gap(autojump_clock):
    server = FakeServer()
    async with running(server, batch_size=2) as client:
        await client.set_markets(TICKERS)
        first = await events(client, {"connected", "synced"}, 2)
        server.current.drop()
        gap = await events(client, {"disconnected", "connected", "synced"}, 3)
        assert [e.kind for e in first + gap] == [
            "connected",
            "synced",
            "disconnected",
            "connected",
            "synced",
        ]
        assert gap[0].reason and "1006" in gap[0].reason
        assert gap[1].clock - gap[0].clock == pytest.approx(1.0)  # backoff base
        assert len(server.connections) == 2
        assert server.current.markets() == set(TICKERS)
        assert client.stats.reconnects == 1


async def test_reconnect_backoff_grows_and_is_capped(autojump_clock):
    server = FakeServer()
    server.fail_connects = 5
    async with running(server) as client:
        await client.set_markets(["A"])
        await client.wait_synced()
    gaps = [b - a for a, b in itertools.pairwise(server.attempts)]
    assert gaps == pytest.approx([1, 2, 4, 8, 8])


async def test_backoff_resets_after_a_stable_connection(autojump_clock):
    server = FakeServer()
    server.fail_connects = 2
    async with running(server, stable_after=10) as client:
        await client.set_markets(["A"])
        await client.wait_synced()
        await trio.sleep(20)
        server.current.drop()
        await events(client, {"disconnected"})
        await events(client, {"synced"})
    # failures before the stable connection waited 1 and 2; after it, back to 1
    gaps = [b - a for a, b in itertools.pairwise(server.attempts)]
    assert gaps[:2] == pytest.approx([1, 2])
    assert server.attempts[-1] - server.attempts[-2] == pytest.approx(21, abs=0.5)


async def test_terminal_error_with_sid_resubscribes_that_channel(autojump_clock):
    server = FakeServer()
    async with running(server) as client:
        await client.set_markets(["A", "B"])
        await events(client, {"synced"})
        conn = server.current
        sid = conn.sid_of("ticker")
        conn.subs.pop(sid)
        conn.push(
            {
                "id": 0,
                "type": "error",
                "sid": sid,
                "msg": {"code": 25, "msg": "Subscription buffer overflow", "sid": sid},
            }
        )
        lost, synced = await events(client, {"subscription_lost", "synced"}, 2)
        assert (lost.kind, synced.kind) == ("subscription_lost", "synced")
        assert "code=25" in (lost.reason or "")
        assert conn.markets() == {"A", "B"}
        assert conn.sid_of("ticker") != sid
        assert len(server.connections) == 1  # no reconnect needed
        assert client.stats.errors_by_code[25] == 1


async def test_terminal_error_without_sid_checks_the_server_list(autojump_clock):
    server = FakeServer()
    async with running(server) as client:
        await client.set_markets(["A"])
        await events(client, {"synced"})
        conn = server.current
        conn.subs.pop(conn.sid_of("ticker"))
        conn.push({"type": "error", "msg": {"code": 17, "msg": "Internal error"}})
        await events(client, {"synced"})
        assert conn.commands_named("list_subscriptions")
        assert conn.markets() == {"A"}


async def test_stray_server_subscriptions_are_removed_on_resync(autojump_clock):
    server = FakeServer()
    async with running(server) as client:
        await client.set_markets(["A"])
        await events(client, {"synced"})
        conn = server.current
        conn.subs[99] = ("ticker", {"Z"})  # unknown to the client
        conn.push({"type": "error", "msg": {"code": 10, "msg": "Channel error"}})
        await events(client, {"synced"})
        assert 99 not in conn.subs


async def test_silent_connection_is_probed_and_kept_when_it_answers(autojump_clock):
    server = FakeServer()
    async with running(server, liveness_timeout=10) as client:
        await client.set_markets(["A"])
        await client.wait_synced()
        await trio.sleep(100)
        assert len(server.connections) == 1
        assert len(server.current.commands_named("list_subscriptions")) >= 9
        assert client.stats.reconnects == 0


async def test_no_frame_within_liveness_window_reconnects(autojump_clock):
    server = FakeServer()
    async with running(server, liveness_timeout=10, liveness_probe=False) as client:
        await client.set_markets(["A"])
        (connected,) = await events(client, {"connected"})
        (dropped,) = await events(client, {"disconnected"})
        assert "no frame" in (dropped.reason or "")
        # the window counts from the last frame (the subscribe replies, at connect time)
        assert dropped.clock - connected.clock == pytest.approx(10)
        await events(client, {"synced"})
        assert len(server.connections) == 2


async def test_unanswered_probe_reconnects(autojump_clock):
    server = FakeServer()
    async with running(server, liveness_timeout=10, reply_timeout=3) as client:
        await client.set_markets(["A"])
        (connected,) = await events(client, {"synced"})
        server.silent = True
        (dropped,) = await events(client, {"disconnected"})
        assert dropped.clock - connected.clock == pytest.approx(13)
        server.silent = False
        await events(client, {"synced"})


async def test_command_without_reply_times_out_and_reconnects(autojump_clock):
    server = FakeServer()
    server.silent = True
    async with running(server, reply_timeout=4) as client:
        await client.set_markets(["A"])
        (dropped,) = await events(client, {"disconnected"})
        assert "no reply to subscribe" in (dropped.reason or "")
        server.silent = False
        await events(client, {"synced"})
        assert server.current.markets() == {"A"}


async def test_data_frames_reach_the_consumer_in_order_and_garbage_is_skipped(autojump_clock):
    server = FakeServer()
    async with running(server) as client:
        await client.set_markets(["A"])
        await events(client, {"synced"})
        conn = server.current
        sid = conn.sid_of("ticker")
        frame = {
            "type": "ticker",
            "sid": sid,
            "msg": {"market_ticker": "A", "price_dollars": "0.0000", "ts_ms": 1},
        }
        conn.push(frame)
        conn.push(frame)  # identical consecutive frame: a duplicate
        conn.push('{"type":"ticker","sid":1,"msg":{"market_ticker"')
        conn.push({**frame, "msg": {**frame["msg"], "ts_ms": 2}})
        conn.push({"type": "mystery", "sid": 5, "msg": {}})
        got = [await client.receive() for _ in range(3)]
        assert [type(g) for g in got] == [DataMessage] * 3
        bodies = [g.body for g in got if isinstance(g, DataMessage)]
        assert isinstance(bodies[0], Ticker) and bodies[0].price_dollars == 0
        assert [b.ts_ms for b in bodies[:2] if isinstance(b, Ticker)] == [1, 2]
        assert bodies[2] is None and got[2].type == "mystery"
        assert (client.stats.duplicates, client.stats.malformed, client.stats.unknown_type) == (
            1,
            1,
            1,
        )


async def test_handshake_is_signed_freshly_for_every_connection(
    autojump_clock, rsa_key: rsa.RSAPrivateKey
):
    server = FakeServer()
    async with running(server, signer=Signer("kid", rsa_key)) as client:
        await client.set_markets(["A"])
        await events(client, {"synced"})
        server.current.drop()
        await events(client, {"synced"})
    signatures = []
    for conn in server.connections:
        headers = {k.decode(): v.decode() for k, v in conn.headers.items()}
        assert headers["KALSHI-ACCESS-KEY"] == "kid"
        assert verify(
            rsa_key.public_key(),
            headers[HEADER_SIGNATURE],
            headers[HEADER_TIMESTAMP],
            "GET",
            "/trade-api/ws/v2",
        )
        signatures.append(headers[HEADER_SIGNATURE])
    assert len(set(signatures)) == 2


async def test_list_subscriptions_without_connection_is_a_clear_error(autojump_clock):
    server = FakeServer()
    server.fail_connects = 100
    async with running(server) as client:
        with pytest.raises(WSConnectionError, match="not connected"):
            await client.list_subscriptions()


async def test_leaving_the_block_cancels_everything(autojump_clock):
    server = FakeServer()
    async with running(server) as client:
        await client.set_markets(["A"])
        await client.wait_synced()
    assert server.current.closed
    # the channel was closed by the client task: consumers see the end of the stream
    with pytest.raises((trio.EndOfChannel, trio.ClosedResourceError)):
        while True:
            await client.receive()


def test_client_rejects_bad_options():
    with pytest.raises(ValueError):
        KalshiWSClient(URL, None, batch_size=0)
    with pytest.raises(ValueError):
        KalshiWSClient(URL, None, reply_timeout=0)


async def test_disconnect_reports_the_gap_from_the_last_frame(autojump_clock):
    server = FakeServer()
    async with running(server, liveness_timeout=1000) as client:
        await client.set_markets(["A"])
        await events(client, {"synced"})
        await trio.sleep(50)  # quiet: nothing arrives
        server.current.drop()
        (dropped,) = await events(client, {"disconnected"})
    assert dropped.gap_start is not None
    assert (dropped.at - dropped.gap_start).total_seconds() == pytest.approx(50, abs=1)


async def test_repeated_terminal_errors_on_subscribe_back_off(autojump_clock):
    server = FakeServer()
    server.fail_ticker_subscribes = 3
    async with running(server) as client:
        await client.set_markets(["A"])
        await client.wait_synced()
        assert server.current.markets() == {"A"}
    gaps = [b - a for a, b in itertools.pairwise(server.failed_at)]
    assert gaps == pytest.approx([1, 2])  # backoff between retries, not a tight loop
    assert len(server.connections) == 1
    assert client.stats.errors_by_code[17] == 3
