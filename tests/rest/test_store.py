"""The rest role's SQL as its own database user: candles, catalogue, queue, runs, partitions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from ingestor.backfill.candle_rows import CANDLE_COLUMNS
from ingestor.backfill.market_candles import MarketRef
from ingestor.catalog.batch import build_batch
from ingestor.catalog.filters import StrikeFilter
from ingestor.catalog.parse import ParseReport, parse_event
from ingestor.db import active_markets, backfill_runs, catalog, partitions, work_queue
from ingestor.db import candles as candle_store
from ingestor.errors import GuardrailViolation
from ingestor.guardrails import Guardrails

T = datetime(2026, 11, 1, tzinfo=UTC)
OFF = Guardrails(enabled=False, role=None)


def candle(ticker: str, minute: int, close: str, extra: dict | None = None) -> tuple:
    values: dict = dict.fromkeys(CANDLE_COLUMNS)
    values.update(
        ticker=ticker,
        period_minutes=1,
        end_period_ts=T + timedelta(minutes=minute),
        yes_bid_close=Decimal(close),
        volume_fp=Decimal("0.00"),
        extra=extra,
    )
    return tuple(values[c] for c in CANDLE_COLUMNS)


@pytest.fixture
def rest_conn(role_url: Callable[[str], str]):  # type: ignore[no-untyped-def]
    with psycopg.connect(role_url("rest"), autocommit=True) as conn:
        yield conn


def test_candle_upsert_counts_only_new_or_changed_rows(rest_conn: psycopg.Connection) -> None:
    rows = [candle("A", m, "0.50") for m in range(1, 6)]
    assert candle_store.upsert_candles(rest_conn, rows) == 5
    assert candle_store.upsert_candles(rest_conn, rows) == 0  # identical: nothing written
    corrected = [candle("A", 3, "0.5100", {"note": 1}), candle("A", 3, "0.5100", {"note": 1})]
    assert candle_store.upsert_candles(rest_conn, corrected) == 1  # batch duplicates collapse
    got = rest_conn.execute(
        "SELECT yes_bid_close, extra FROM market_candles WHERE end_period_ts = %s",
        (T + timedelta(minutes=3),),
    ).fetchone()
    assert got == (Decimal("0.5100"), {"note": 1})
    assert candle_store.last_end_times(rest_conn, "A", [1, 60]) == {1: T + timedelta(minutes=5)}
    assert candle_store.last_end_times_many(rest_conn, ["A", "B"], [1]) == {
        "A": {1: T + timedelta(minutes=5)}
    }
    assert candle_store.upsert_candles(rest_conn, []) == 0


def _event(ticker: str, status: str) -> dict:
    return {
        "event_ticker": "EV",
        "series_ticker": "S",
        "strike_period": "hour",
        "title": ticker,
        "markets": [
            {
                "ticker": ticker,
                "status": status,
                "open_time": "2026-11-01T00:00:00Z",
                "close_time": "2026-11-01T01:00:00Z",
                "yes_bid_dollars": "0.1000",
            }
        ],
    }


def _batch(ticker: str, status: str = "active"):  # type: ignore[no-untyped-def]
    parsed = parse_event(_event(ticker, status), ParseReport())
    assert parsed is not None
    return build_batch([parsed], StrikeFilter.of(["hour"]))


def test_older_data_never_overwrites_newer(rest_conn: psycopg.Connection) -> None:
    catalog.store_batch(rest_conn, _batch("M"), T + timedelta(minutes=5), add_active=True)
    stale = _batch("M", status="inactive")
    catalog.store_batch(rest_conn, stale, T, add_active=True)
    assert rest_conn.execute("SELECT status, updated_at FROM markets").fetchone() == (
        "active",
        T + timedelta(minutes=5),
    )
    ended = _batch("M", status="finalized")
    counts = catalog.store_batch(rest_conn, ended, T + timedelta(minutes=9), add_active=False)
    assert counts.active_removed == 1 and active_markets.count(rest_conn) == 0
    stored = catalog.stored_markets(rest_conn, ["M", "X"])
    assert [(m.ticker, m.series_ticker, m.status) for m in stored] == [("M", "S", "finalized")]


def test_active_set_is_pruned_by_close_and_by_unseen(rest_conn: psycopg.Connection) -> None:
    catalog.store_batch(rest_conn, _batch("M"), T, add_active=True)
    assert active_markets.remove_unseen(rest_conn, T, T) == 0
    assert active_markets.prune_closed(rest_conn, T + timedelta(minutes=30)) == 0
    assert active_markets.prune_closed(rest_conn, T + timedelta(hours=2)) == 1
    catalog.store_batch(rest_conn, _batch("M"), T, add_active=True)
    assert active_markets.remove_unseen(rest_conn, T + timedelta(seconds=1), T) == 1
    # a paused market that the pass did not list stays until its close
    catalog.store_batch(rest_conn, _batch("M", status="inactive"), T, add_active=True)
    assert active_markets.remove_unseen(rest_conn, T + timedelta(seconds=1), T) == 0
    later = T + timedelta(hours=2)
    assert active_markets.remove_unseen(rest_conn, T + timedelta(seconds=1), later) == 1


def test_enqueue_keeps_one_live_job_per_market(rest_conn: psycopg.Connection, db_url: str) -> None:
    ref = MarketRef("M", "S", "hour", T, T + timedelta(hours=1))
    jobs = [(ref.ticker, ref.job_payload()), (ref.ticker, ref.job_payload(force_full=True))]
    assert work_queue.enqueue(rest_conn, "backfill_market", jobs, guardrails=OFF) == 1
    assert work_queue.enqueue(rest_conn, "backfill_market", jobs[:1], guardrails=OFF) == 0
    assert work_queue.counts_by_status(rest_conn) == {
        "pending": 1,
        "running": 0,
        "done": 0,
        "failed": 0,
    }
    with psycopg.connect(db_url) as admin:
        admin.execute("UPDATE work_queue SET status = 'done'")
    assert work_queue.enqueue(rest_conn, "backfill_market", jobs[:1], guardrails=OFF) == 1
    assert work_queue.counts_by_status(rest_conn, "backfill_market")["done"] == 1
    with pytest.raises(GuardrailViolation, match="enqueue"):
        work_queue.enqueue(
            rest_conn, "backfill_market", jobs, guardrails=Guardrails(enabled=True, role="ws")
        )


def test_backfill_runs_record_progress(rest_conn: psycopg.Connection) -> None:
    run_id = backfill_runs.start(rest_conn, T, T + timedelta(hours=1), {"mode": "inline"})
    progress = backfill_runs.RunProgress(
        markets_total=10,
        markets_done=4,
        candles_written=99,
        requests=12,
        errors=1,
        detail={"failed": ["X"]},
    )
    backfill_runs.update(rest_conn, run_id, progress)
    backfill_runs.update(rest_conn, run_id, progress, "failed")
    run = backfill_runs.recent(rest_conn)[0]
    assert run["status"] == "failed" and run["finished_at"] is not None
    assert (run["markets_total"], run["markets_done"], run["candles_written"]) == (10, 4, 99)
    assert run["detail"] == {"failed": ["X"]}
    with pytest.raises(ValueError, match="status"):
        backfill_runs.update(rest_conn, run_id, progress, "bogus")


def test_rest_user_keeps_partitions_ahead(rest_conn: psycopg.Connection) -> None:
    assert partitions.ensure_ahead(rest_conn, 6) >= 2  # three more months for two tables
    assert partitions.ensure_ahead(rest_conn, 6) == 0
