"""REST and WS clients against the simulated exchange (real sockets, real signatures)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import rsa

from ingestor.kalshi.errors import (
    KalshiAuthError,
    KalshiNotFoundError,
    KalshiServerError,
)
from ingestor.kalshi.ratelimit import TokenBucket, server_matched
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.kalshi.retry import Backoff, RetryPolicy
from ingestor.kalshi.signing import Signer
from ingestor.kalshi.ws import ConnectionEvent, KalshiWSClient, open_ws_client
from ingestor.kalshi.ws_protocol import DataMessage, Ticker
from ingestor.sim import Sim, open_sim

QUIET: dict[str, Any] = {
    "seed": 3,
    "markets": 20,
    "rate": 0.0,
    "manual_clock": True,
    "tick_rate": 0.0,
    "start_ts": 1_767_229_200,
    "history_hours": 6.0,
}
FAST_RETRY = RetryPolicy(max_attempts=4, backoff=Backoff(base=0.01, cap=0.05, jitter=0.5))
STEP = 10.0  # upper bound for any single wait in these tests


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with open_sim(**QUIET) as s:
        yield s


def signer_for(sim: Sim) -> Signer:
    assert sim.private_key_path is not None
    return Signer.from_file(sim.key_id, sim.private_key_path)


def rest_client(sim: Sim, **kw: Any) -> KalshiRestClient:
    kw.setdefault("signer", signer_for(sim))
    kw.setdefault("limiter", TokenBucket(1000, 1000))
    kw.setdefault("retry", FAST_RETRY)
    return KalshiRestClient(sim.rest_url, **kw)


# ---- REST -----------------------------------------------------------------------------------


async def test_paged_markets_equal_one_big_page(sim: Sim):
    async with rest_client(sim) as client:
        paged = [m.ticker async for m in client.iter_markets(limit=3)]
        pages = [p async for p in client.market_pages(limit=3)]
        whole = [m.ticker async for m in client.iter_markets(limit=1000)]
    assert len(paged) >= 20
    assert paged == whole
    assert len(pages) == -(-len(whole) // 3)
    assert pages[-1].next_cursor is None
    assert sim.auth_failures == {}


async def test_events_with_nested_markets_from_sim(sim: Sim):
    async with rest_client(sim) as client:
        events = [
            e async for e in client.iter_events(with_nested_markets=True, limit=2, status="open")
        ]
        assert events and all(e.markets for e in events)
        market = events[0].markets[0]  # type: ignore[index]
        single = await client.get_market(market.ticker)
        event = await client.get_event(events[0].event_ticker)
        series = await client.get_series(events[0].series_ticker or "")
    assert single.ticker == market.ticker
    assert isinstance(single.yes_bid_dollars, Decimal)
    assert {m.ticker for m in event.markets or []} >= {market.ticker}
    assert series.ticker == events[0].series_ticker


async def test_candles_from_sim_are_decimal(sim: Sim):
    ticker = max(sim.exchange.active_tickers, key=lambda t: len(sim.exchange.ticks(t)))
    assert sim.exchange.ticks(ticker)
    series = sim.exchange.market(ticker).series_ticker
    end = int(sim.clock.now())
    async with rest_client(sim) as client:
        candles = await client.get_candlesticks(
            series, ticker, start_ts=end - 6 * 3600, end_ts=end, period_interval=60
        )
        batch = await client.get_batch_candlesticks(
            [ticker], start_ts=end - 6 * 3600, end_ts=end, period_interval=60
        )
    assert candles
    assert [c.end_period_ts for c in batch[ticker]] == [c.end_period_ts for c in candles]
    assert all(c.end_period_ts % 3600 == 0 for c in candles)
    closes = [c.yes_bid.close_dollars for c in candles if c.yes_bid]
    assert closes and all(isinstance(v, Decimal) and 0 <= v <= 1 for v in closes)


async def test_injected_429_and_5xx_are_retried(sim: Sim):
    sim.faults.http_errors(2, status=429)
    sim.faults.http_errors(1, status=503)
    sim.faults.http_errors(1, status=500)
    async with rest_client(
        sim, retry=RetryPolicy(max_attempts=5, backoff=FAST_RETRY.backoff)
    ) as client:
        status = await client.exchange_status()
    assert status.exchange_active is not None
    assert client.stats.retries == 4
    assert client.stats.errors_by_status == {429: 2, 503: 1, 500: 1}


async def test_retries_exhausted_against_sim_raise(sim: Sim):
    sim.faults.http_errors(10, status=500)
    async with rest_client(sim) as client:
        with pytest.raises(KalshiServerError) as info:
            await client.get_market(sim.exchange.active_tickers[0])
    assert info.value.attempts == 4


async def test_slow_reply_times_out_and_is_retried(sim: Sim):
    sim.faults.slow_replies(1, 3.0)
    async with rest_client(sim, timeout=0.3) as client:
        status = await client.exchange_status()
    assert status is not None
    assert client.stats.transport_errors == 1


async def test_unknown_market_is_not_found(sim: Sim):
    async with rest_client(sim) as client:
        with pytest.raises(KalshiNotFoundError):
            await client.get_market("NO-SUCH-MARKET")
        assert client.stats.retries == 0


async def test_wrong_key_gets_a_401_that_explains_itself(sim: Sim, rsa_key: rsa.RSAPrivateKey):
    async with rest_client(sim, signer=Signer(sim.key_id, rsa_key)) as client:
        with pytest.raises(KalshiAuthError, match="demo keys only work on demo hosts"):
            await client.exchange_status()
    assert sum(sim.auth_failures.values()) == 1


async def test_public_reads_work_unsigned(sim: Sim):
    async with rest_client(sim, signer=None) as client:
        assert (await client.exchange_status()).exchange_active is not None


async def test_limiter_matched_to_the_sim_avoids_429():
    async with open_sim(**{**QUIET, "rate": 20.0, "burst": 4}) as sim:
        limiter = server_matched(20, 4)
        async with rest_client(sim, limiter=limiter, retry=RetryPolicy(max_attempts=1)) as client:

            async def worker() -> None:
                for _ in range(8):
                    await client.exchange_status()

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(worker)
        assert sim.status_counts[200] == 24
        assert sim.status_counts[429] == 0


# ---- WS -------------------------------------------------------------------------------------


def ws_client(sim: Sim, **kw: Any) -> Any:
    kw.setdefault("backoff", Backoff(base=0.02, cap=0.2, jitter=0.5))
    kw.setdefault("reply_timeout", 5.0)
    return open_ws_client(sim.ws_url, kw.pop("signer", signer_for(sim)), **kw)


async def next_event(client: KalshiWSClient, kind: str) -> ConnectionEvent:
    with trio.fail_after(STEP):
        while True:
            item = await client.receive()
            if isinstance(item, ConnectionEvent) and item.kind == kind:
                return item


async def tickers_received(client: KalshiWSClient, n: int) -> list[Ticker]:
    out: list[Ticker] = []
    with trio.fail_after(STEP):
        while len(out) < n:
            item = await client.receive()
            if isinstance(item, DataMessage) and isinstance(item.body, Ticker):
                out.append(item.body)
    return out


def server_markets(sim: Sim) -> tuple[int, dict[str, frozenset[str] | None]]:
    subs = sim.subscriptions()
    assert len(subs) == 1, subs
    ((conn_id, views),) = subs.items()
    return conn_id, {v.channel: v.markets for v in views}


async def test_ws_client_survives_faults_and_ends_subscribed_to_exactly_the_wanted_markets(
    sim: Sim,
):
    active = sim.exchange.active_tickers
    wanted = active[:12]
    async with ws_client(sim, batch_size=5) as client:
        await client.set_markets(wanted)
        await next_event(client, "synced")
        _, markets = server_markets(sim)
        assert markets == {"market_lifecycle_v2": None, "ticker": frozenset(wanted)}

        # data flows, garbage and duplicates are skipped and counted
        sim.faults.malformed_frames(2)
        sim.faults.duplicate_frames(3)
        sent = sim.emit_ticks(10, wanted[:5])
        got = await tickers_received(client, 8)
        assert [t.market_ticker for t in got] == [t.ticker for t in sent[2:]]
        assert [t.price_dollars for t in got] == [Decimal(t.price) / 100 for t in sent[2:]]
        assert client.stats.malformed == 2
        assert client.stats.duplicates == 3

        # a dropped connection: reconnect, resubscribe
        sim.faults.drop_ws_connections()
        await next_event(client, "disconnected")
        await next_event(client, "synced")

        # error 25 ends the ticker subscription server-side: resubscribe on the same socket
        assert sim.faults.ws_error(code=25) == 1
        await next_event(client, "subscription_lost")
        await next_event(client, "synced")

        # the wanted set changes while all this happens
        wanted = active[6:18]
        await client.set_markets(wanted)
        with trio.fail_after(STEP):
            await client.wait_synced()
        _, markets = server_markets(sim)
        assert markets == {"market_lifecycle_v2": None, "ticker": frozenset(wanted)}
        listed = await client.list_subscriptions()
        assert sorted(s.channel for s in listed) == ["market_lifecycle_v2", "ticker"]
        assert client.stats.reconnects == 1
        assert client.stats.errors_by_code[25] == 1

        # ticks of markets no longer wanted do not arrive; wanted ones do
        sent = sim.emit_ticks(4, [active[0], wanted[-1]])
        got = await tickers_received(client, 2)
        assert {t.market_ticker for t in got} == {wanted[-1]}


async def test_ws_unknown_market_is_left_out(sim: Sim):
    wanted = sim.exchange.active_tickers[:3]
    async with ws_client(sim) as client:
        await client.set_markets([*wanted, "NO-SUCH-MARKET"])
        await next_event(client, "synced")
        _, markets = server_markets(sim)
    assert markets["ticker"] == frozenset(wanted)
    assert client.stats.errors_by_code[16] == 1


async def test_ws_handshake_with_wrong_key_is_rejected_and_retried(
    sim: Sim, rsa_key: rsa.RSAPrivateKey
):
    async with ws_client(sim, signer=Signer(sim.key_id, rsa_key)) as client:
        await client.set_markets(sim.exchange.active_tickers[:1])
        await sim.wait_for(lambda: sum(sim.auth_failures.values()) >= 2, timeout=STEP)
        assert not client.connected
    assert sim.ws_connection_count == 0


async def test_ws_legacy_payloads_parse_to_the_same_decimals():
    async with open_sim(**{**QUIET, "legacy": True}) as sim:
        wanted = sim.exchange.active_tickers[:2]
        async with ws_client(sim) as client:
            await client.set_markets(wanted)
            await next_event(client, "synced")
            sent = sim.emit_ticks(4, wanted)
            got = await tickers_received(client, 4)
    for tick, parsed in zip(sent, got, strict=True):
        assert parsed.market_ticker == tick.ticker
        assert parsed.price_dollars == Decimal(tick.price) / 100
        assert parsed.yes_bid_dollars == Decimal(tick.yes_bid) / 100
        assert parsed.volume_fp == tick.volume_cc // 100
        assert parsed.ts is not None and parsed.ts_ms is None


async def test_ws_list_subscriptions_matches_the_sim(sim: Sim):
    async with ws_client(sim) as client:
        await client.set_markets(sim.exchange.active_tickers[:2])
        await next_event(client, "synced")
        listed = {s.sid: s.channel for s in await client.list_subscriptions()}
        ((_, views),) = sim.subscriptions().items()
        assert listed == {v.sid: v.channel for v in views}
        assert client.subscriptions() == {ch: sid for sid, ch in listed.items()}
