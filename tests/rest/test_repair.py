"""Repair against the simulator: pruning, settlement refresh, candle tails and ws gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from ingestor.backfill.market_candles import CoverageMemo
from ingestor.backfill.repair import RepairConfig, RepairState, repair_pass
from ingestor.backfill.run import BackfillConfig, BackfillState, backfill_pass
from ingestor.db.connect import Database
from ingestor.discovery import DiscoveryConfig, discovery_pass
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.sim import Sim

from .conftest import RecordingTransport, rest_settings, sim_now
from .expect import CANDLES_SQL, dec

SETTINGS = rest_settings(CANDLE_PERIODS="1,60", CLOSED_CLEANUP_GRACE_MINUTES="30")
REPAIR = RepairConfig.from_settings(SETTINGS)


async def test_prune_and_settlement_refresh_after_markets_settle(
    sim: Sim, client: KalshiRestClient, rest_db: Database, db_url: str
) -> None:
    await discovery_pass(client, rest_db, DiscoveryConfig.from_settings(SETTINGS), now=sim_now(sim))
    with psycopg.connect(db_url) as conn:
        active = {r[0] for r in conn.execute("SELECT ticker FROM active_markets")}
    sim.advance(3 * 3600)  # the hourly markets close and settle; no discovery runs meanwhile
    now = sim.clock.now()
    result = await repair_pass(client, rest_db, REPAIR, RepairState(), now=sim_now(sim))
    cutoff = now - 30 * 60
    closed = {t for t in active if sim.exchange.market(t).close_ts < cutoff}
    assert closed and result.pruned == len(closed)
    with psycopg.connect(db_url) as conn:
        left = {r[0] for r in conn.execute("SELECT ticker FROM active_markets")}
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT ticker, status, result, settlement_value_dollars FROM markets "
                "WHERE ticker = ANY(%s)",
                (sorted(closed),),
            )
        }
    assert left == active - closed
    assert result.settlement_filled >= len(closed)
    for ticker in closed:
        m = sim.exchange.market(ticker)
        j = sim.exchange.market_json(m)
        assert rows[ticker] == (m.status, m.result, dec(j["settlement_value_dollars"]))
        assert rows[ticker][2] is not None


async def test_candle_tails_and_ws_gaps_are_fetched_again(
    sim: Sim,
    client: KalshiRestClient,
    transport: RecordingTransport,
    rest_db: Database,
    db_url: str,
) -> None:
    memo = CoverageMemo()
    await backfill_pass(
        client,
        rest_db,
        BackfillConfig.from_settings(SETTINGS),
        BackfillState(memo=memo),
        now=sim_now(sim),
    )
    with psycopg.connect(db_url) as conn:
        complete = conn.execute(CANDLES_SQL).fetchall()
    now = sim.clock.now()
    closed = sorted(
        (
            m
            for m in sim.exchange.markets.values()
            if m.close_ts < now - 7200 and m.series_ticker == "SIMBTCH"
        ),
        key=lambda m: m.close_ts,
    )
    tail_victim, gap_victim = closed[-1], closed[-2]
    gap_start = datetime.fromtimestamp(gap_victim.open_ts + 900, UTC)
    gap_end = gap_start + timedelta(minutes=20)
    with psycopg.connect(db_url) as conn:
        cut = conn.execute(
            "DELETE FROM market_candles WHERE ticker = %s AND end_period_ts > %s",
            (tail_victim.ticker, datetime.fromtimestamp(tail_victim.close_ts - 1200, UTC)),
        ).rowcount
        hole = conn.execute(
            "DELETE FROM market_candles WHERE ticker = %s AND end_period_ts BETWEEN %s AND %s",
            (gap_victim.ticker, gap_start, gap_end),
        ).rowcount
        conn.execute(
            "INSERT INTO ws_gaps (shard_id, shard_count, reason, started_at, ended_at, markets,"
            " market_count) VALUES (0, 1, 'disconnected', %s, %s, %s, 1)",
            (gap_start, gap_end, [gap_victim.ticker]),
        )
        conn.execute(
            "INSERT INTO ws_gaps (shard_id, shard_count, reason, started_at, markets,"
            " market_count) VALUES (0, 1, 'stale', %s, %s, 1)",
            (gap_end, [gap_victim.ticker]),
        )
    assert cut > 0 and hole > 0
    # The same process trusts what its backfill fetched: only the ws gap is re-fetched.
    state = RepairState(memo=memo, gap_since=datetime(2000, 1, 1, tzinfo=UTC))
    mark = transport.mark()
    result = await repair_pass(client, rest_db, REPAIR, state, now=sim_now(sim))
    assert result.gaps == 1 and result.gap_markets == 1 and result.tails == 0
    assert result.candles_written == hole
    calls = transport.candle_calls(mark)
    assert {c.ticker for c in calls} == {gap_victim.ticker}
    assert all(c.end_ts <= int(gap_end.timestamp()) for c in calls)
    again = await repair_pass(client, rest_db, REPAIR, state, now=sim_now(sim))
    assert again.gaps == 0 and again.candles_written == 0  # the open gap still waits
    # After a restart, tails are checked oldest first, a bounded number per pass.
    restarted = RepairState(gap_since=datetime(2000, 1, 1, tzinfo=UTC), gap_after_id=1)
    passes = []
    for _ in range(10):
        passes.append(await repair_pass(client, rest_db, REPAIR, restarted, now=sim_now(sim)))
        if passes[-1].tails == 0:
            break
    assert len(passes) > 2 and all(p.tails <= REPAIR.candle_limit for p in passes)
    assert sum(p.candles_written for p in passes) == cut
    assert not [p for p in passes if p.failed]
    with psycopg.connect(db_url) as conn:
        assert conn.execute(CANDLES_SQL).fetchall() == complete


async def test_queue_mode_repair_enqueues_instead_of_fetching(
    sim: Sim,
    client: KalshiRestClient,
    transport: RecordingTransport,
    rest_db: Database,
    db_url: str,
) -> None:
    settings = rest_settings(CANDLE_PERIODS="1,60", WORK_QUEUE_ENABLE="1")
    await discovery_pass(client, rest_db, DiscoveryConfig.from_settings(settings), now=sim_now(sim))
    sim.advance(3 * 3600)
    await discovery_pass(client, rest_db, DiscoveryConfig.from_settings(settings), now=sim_now(sim))
    mark = transport.mark()
    result = await repair_pass(
        client, rest_db, RepairConfig.from_settings(settings), RepairState(), now=sim_now(sim)
    )
    assert not transport.candle_calls(mark)
    assert result.tails > 0 and result.enqueued == result.tails
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM work_queue WHERE job_type = 'backfill_market'"
        ).fetchone() == (result.enqueued,)
