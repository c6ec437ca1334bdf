"""Partitions: created ahead, rows in the default partition moved, old months dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from ingestor.db import partitions


def _month(dt: datetime) -> datetime:
    return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_partitions_exist_through_months_ahead(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        partitions.ensure_ahead(conn, 5)
        names = {p.name for p in partitions.list_partitions(conn)}
    now = datetime.now(UTC)
    month = _month(now)
    for _ in range(6):
        suffix = f"p{month:%Y_%m}"
        assert f"market_ticks_{suffix}" in names
        assert f"market_candles_{suffix}" in names
        month = _month(month + timedelta(days=32))


def test_old_rows_in_default_are_moved_into_new_partitions(db_url: str) -> None:
    old = datetime(2024, 3, 15, 12, tzinfo=UTC)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO market_candles (ticker, period_minutes, end_period_ts, price_close) "
            "VALUES ('OLD-1', 60, %s, 0.25)",
            (old,),
        )
        conn.execute(
            "INSERT INTO market_ticks (ticker, ts, fingerprint, received_at) VALUES ('OLD-1', %s, 7, now())",
            (old,),
        )
        assert partitions.default_partition_rows(conn) == {"market_ticks": 1, "market_candles": 1}
        created = partitions.ensure_ahead(conn, 3)
        assert created > 0
        assert partitions.default_partition_rows(conn) == {"market_ticks": 0, "market_candles": 0}
        where = conn.execute(
            "SELECT tableoid::regclass::text, price_close FROM market_candles WHERE ticker = 'OLD-1'"
        ).fetchall()
        assert [(str(t), float(p)) for t, p in where] == [("market_candles_p2024_03", 0.25)]
        assert partitions.ensure_ahead(conn, 3) == 0


def test_drop_before_removes_whole_old_months_only(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO market_ticks (ticker, ts, fingerprint, received_at) "
            "VALUES ('A', '2025-01-10T00:00:00Z', 1, now()), ('A', '2025-02-10T00:00:00Z', 2, now())"
        )
        partitions.ensure_ahead(conn, 1)
        cutoff = datetime(2025, 2, 15, tzinfo=UTC)
        # candles had no rows that old, so only the ticks month exists to drop
        assert partitions.drop_before(conn, cutoff, dry_run=True) == ["market_ticks_p2025_01"]
        dropped = partitions.drop_before(conn, cutoff)
        assert "market_ticks_p2025_01" in dropped
        left = conn.execute("SELECT ts FROM market_ticks WHERE ticker = 'A'").fetchall()
        assert [r[0] for r in left] == [datetime(2025, 2, 10, tzinfo=UTC)]
