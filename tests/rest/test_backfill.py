"""Backfill against the simulator: exact candles, idempotence, crash resume, faults, the cursor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import trio

from ingestor.backfill.run import BackfillConfig, BackfillState, backfill_pass, read_cursor
from ingestor.db import backfill_runs
from ingestor.db.connect import Database
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.sim import Sim, open_sim

from .conftest import RecordingTransport, make_client, rest_settings, sim_now
from .expect import CANDLES_SQL, expected_candles

PERIODS = (1, 60)
CONFIG = BackfillConfig.from_settings(rest_settings(CANDLE_PERIODS="1,60"))


def _in_scope(sim: Sim, cursor: datetime) -> list:
    ex = sim.exchange
    out = []
    for group in (ex.markets, ex.historical_markets):
        for m in group.values():
            if ex.series[m.series_ticker].strike_period not in ("hour", "day"):
                continue
            if m.close_ts >= cursor.timestamp():
                out.append(m)
    return out


def _expected(sim: Sim) -> list[tuple]:
    now = sim.clock.now()
    cursor = datetime.fromtimestamp(now, UTC) - timedelta(days=CONFIG.start_days)
    return expected_candles(sim.exchange, _in_scope(sim, cursor), PERIODS, now)


def _stored(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return [tuple(r) for r in conn.execute(CANDLES_SQL).fetchall()]


def _cursor(db_url: str) -> datetime | None:
    with psycopg.connect(db_url) as conn:
        return read_cursor(conn)


async def test_backfill_stores_exactly_the_simulator_candles(
    sim: Sim,
    client: KalshiRestClient,
    transport: RecordingTransport,
    rest_db: Database,
    db_url: str,
) -> None:
    result = await backfill_pass(client, rest_db, CONFIG, BackfillState(), now=sim_now(sim))
    expected = _expected(sim)
    stored = _stored(db_url)
    assert len(stored) == len(expected) > 1000
    assert stored == expected
    assert result.status == "completed" and not result.failed
    assert result.candles_written == len(expected)
    assert result.markets_done == result.markets_total
    assert _cursor(db_url) == datetime.fromtimestamp(sim.clock.now(), UTC)
    historical = {c.ticker for c in transport.candle_calls() if c.historical}
    assert historical and historical <= set(sim.exchange.historical_markets)
    with psycopg.connect(db_url) as conn:
        run = backfill_runs.recent(conn, 1)[0]
    assert run["status"] == "completed"
    assert run["markets_done"] == run["markets_total"] == result.markets_total
    assert run["candles_written"] == len(expected)
    assert run["requests"] == result.requests > 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM market_candles WHERE extra IS NOT NULL"
        ).fetchone() == (0,)


async def test_second_run_writes_nothing_and_asks_only_for_missing_ranges(
    sim: Sim,
    client: KalshiRestClient,
    transport: RecordingTransport,
    rest_db: Database,
    db_url: str,
) -> None:
    state = BackfillState()
    await backfill_pass(client, rest_db, CONFIG, state, now=sim_now(sim))
    with psycopg.connect(db_url) as conn:
        newest = {
            (t, p): int(e.timestamp())
            for t, p, e in conn.execute(
                "SELECT ticker, period_minutes, max(end_period_ts) FROM market_candles GROUP BY 1, 2"
            )
        }
    before = _stored(db_url)
    for fresh in (False, True):  # the same process, then a restarted one
        mark = transport.mark()
        result = await backfill_pass(
            client, rest_db, CONFIG, BackfillState() if fresh else state, now=sim_now(sim)
        )
        assert result.candles_written == 0
        calls = transport.candle_calls(mark)
        for call in calls:
            assert call.start_ts > newest.get((call.ticker, call.period), 0)
        closed = [c for c in calls if sim.exchange.market(c.ticker).close_ts <= sim.clock.now()]
        assert not closed, "markets closed before the cursor are not asked again"
        assert len(calls) <= len(PERIODS) * len(sim.exchange.active_tickers)
    assert _stored(db_url) == before


async def test_killed_pass_resumes_with_no_gap_and_no_duplicate(
    sim: Sim,
    transport: RecordingTransport,
    rest_db: Database,
    db_url: str,
) -> None:
    async with make_client(sim, transport) as client:
        with trio.CancelScope() as scope:

            def kill_after_80_candle_calls(_: httpx.Request) -> None:
                if len(transport.candle_calls()) >= 80:
                    scope.cancel()

            transport.after = kill_after_80_candle_calls
            await backfill_pass(client, rest_db, CONFIG, BackfillState(), now=sim_now(sim))
        assert scope.cancelled_caught
        transport.after = None
        partial = len(_stored(db_url))
        assert 0 < partial < len(_expected(sim))
        cursor = _cursor(db_url)
        with psycopg.connect(db_url) as conn:
            run = backfill_runs.recent(conn, 1)[0]
        assert run["status"] == "interrupted"
        assert 0 < run["markets_done"] < run["markets_total"]
        result = await backfill_pass(client, rest_db, CONFIG, BackfillState(), now=sim_now(sim))
    assert result.status == "completed"
    assert cursor is None or result.cursor_before == cursor
    assert _stored(db_url) == _expected(sim)


async def test_429_and_5xx_bursts_slow_it_down_but_lose_nothing(
    role_url: Callable[[str], str], db_url: str
) -> None:
    async with open_sim(
        seed=1, markets=20, manual_clock=True, rate=300, burst=10, tick_rate=0
    ) as sim:
        transport = RecordingTransport()
        statuses = iter([429, 500, 503] * 100)

        def burst(_: httpx.Request) -> None:
            if len(transport.requests) % 40 == 0:
                sim.faults.http_errors(3, next(statuses))

        transport.after = burst
        db = Database(role_url("rest"), max_size=4).open()
        try:
            async with make_client(sim, transport, retries=6, rate=1000) as client:
                result = await backfill_pass(client, db, CONFIG, BackfillState(), now=sim_now(sim))
                assert client.stats.rate_limited > 0
                assert client.stats.errors_by_status[500] > 0
                assert client.stats.errors_by_status[503] > 0
                assert client.stats.retries > 0
            assert result.status == "completed" and not result.failed
            assert _stored(db_url) == _expected(sim)
        finally:
            db.close()


async def test_failed_market_holds_the_cursor_until_it_succeeds(
    sim: Sim,
    transport: RecordingTransport,
    rest_db: Database,
    db_url: str,
) -> None:
    now = sim.clock.now()
    closed = sorted(
        (
            m
            for m in _in_scope(sim, datetime.fromtimestamp(now, UTC) - timedelta(days=7))
            if m.close_ts < now - 3 * 3600 and m.ticker in sim.exchange.markets
        ),
        key=lambda m: m.close_ts,
    )
    victim = closed[len(closed) // 2]

    def broken(request: httpx.Request) -> httpx.Response | None:
        if victim.ticker in request.url.path and request.url.path.endswith("candlesticks"):
            return httpx.Response(500, json={"error": {"code": "internal", "message": "boom"}})
        return None

    transport.rules.append(broken)
    async with make_client(sim, transport, retries=2) as client:
        result = await backfill_pass(client, rest_db, CONFIG, BackfillState(), now=sim_now(sim))
        assert result.failed == [victim.ticker]
        assert result.status == "failed"
        cursor = _cursor(db_url)
        assert cursor is not None
        assert cursor <= datetime.fromtimestamp(victim.close_ts, UTC)
        assert cursor > result.cursor_before  # windows before the failure did advance
        stored = _stored(db_url)
        assert {r[0] for r in stored} == {r[0] for r in _expected(sim)} - {victim.ticker}
        with psycopg.connect(db_url) as conn:
            run = backfill_runs.recent(conn, 1)[0]
        assert run["status"] == "failed" and run["errors"] >= 1
        assert run["detail"]["failed"] == [victim.ticker]

        transport.rules.clear()
        again = await backfill_pass(client, rest_db, CONFIG, BackfillState(), now=sim_now(sim))
    assert again.cursor_before == cursor
    assert again.status == "completed"
    assert _cursor(db_url) == datetime.fromtimestamp(sim.clock.now(), UTC)
    assert _stored(db_url) == _expected(sim)


async def test_queue_mode_enqueues_one_live_job_per_market(
    sim: Sim,
    client: KalshiRestClient,
    transport: RecordingTransport,
    rest_db: Database,
    db_url: str,
) -> None:
    config = BackfillConfig.from_settings(
        rest_settings(CANDLE_PERIODS="1,60", WORK_QUEUE_ENABLE="1")
    )
    result = await backfill_pass(client, rest_db, config, BackfillState(), now=sim_now(sim))
    assert not transport.candle_calls()
    with psycopg.connect(db_url) as conn:
        jobs = conn.execute(
            "SELECT job_type, dedupe_key, payload, status FROM work_queue ORDER BY id"
        ).fetchall()
    assert result.enqueued == len(jobs) > 0
    now = sim.clock.now()
    with_candles = {r[0] for r in _expected(sim)}
    keys = {j[1] for j in jobs}
    assert with_candles <= keys
    for job_type, key, payload, status in jobs:
        assert (job_type, status) == ("backfill_market", "pending")
        m = sim.exchange.market(key)
        assert payload["market"] == {
            "ticker": key,
            "open_time": datetime.fromtimestamp(m.open_ts, UTC).isoformat().replace("+00:00", "Z"),
            "close_time": datetime.fromtimestamp(m.close_ts, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
        }
        assert payload["series_ticker"] == m.series_ticker
        assert payload["strike_period"] in ("hour", "day")
        assert m.open_ts < now
    again = await backfill_pass(client, rest_db, config, BackfillState(), now=sim_now(sim))
    assert again.enqueued == 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM work_queue").fetchone() == (len(jobs),)


async def test_a_market_unknown_to_both_endpoints_is_reported_not_blocking(
    sim: Sim, transport: RecordingTransport, rest_db: Database, db_url: str
) -> None:
    now = sim.clock.now()
    gone = next(
        m
        for m in sorted(sim.exchange.markets.values(), key=lambda m: m.close_ts)
        if m.series_ticker == "SIMBTCH" and m.close_ts < now - 3600
    )

    def missing(request: httpx.Request) -> httpx.Response | None:
        if gone.ticker in request.url.path and request.url.path.endswith("candlesticks"):
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "gone"}})
        return None

    transport.rules.append(missing)
    async with make_client(sim, transport) as client:
        result = await backfill_pass(client, rest_db, CONFIG, BackfillState(), now=sim_now(sim))
    calls = [c for c in transport.candle_calls() if c.ticker == gone.ticker]
    assert [c.historical for c in calls] == [False, True]  # live, then archived, then stop
    assert result.status == "completed" and result.not_found == 1 and result.errors >= 1
    assert _cursor(db_url) == datetime.fromtimestamp(now, UTC)
    with psycopg.connect(db_url) as conn:
        run = backfill_runs.recent(conn, 1)[0]
    assert run["detail"]["not_found_tickers"] == [gone.ticker]
