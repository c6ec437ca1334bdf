"""active_markets: the open and paused markets the ws role subscribes to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg

from ingestor.catalog.lifecycle import MarketPatch
from ingestor.catalog.rows import ACTIVE_COLUMNS


def upsert(conn: psycopg.Connection, rows: Sequence[Mapping[str, Any]], seen_at: datetime) -> int:
    """Insert or refresh rows (their markets must exist), stamping last_seen_at."""
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO active_markets
                (ticker, event_ticker, series_ticker, strike_period, status, open_time,
                 close_time, last_seen_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
            ON CONFLICT (ticker) DO UPDATE SET
                event_ticker = EXCLUDED.event_ticker,
                series_ticker = EXCLUDED.series_ticker,
                strike_period = EXCLUDED.strike_period,
                status = EXCLUDED.status,
                open_time = EXCLUDED.open_time,
                close_time = EXCLUDED.close_time,
                last_seen_at = greatest(active_markets.last_seen_at, EXCLUDED.last_seen_at),
                updated_at = now()
            """,
            [[*(r[c] for c in ACTIVE_COLUMNS), seen_at] for r in rows],
        )
        return max(cur.rowcount, 0)


def remove(conn: psycopg.Connection, tickers: Sequence[str]) -> int:
    """Drop these markets from the active set."""
    if not tickers:
        return 0
    cur = conn.execute("DELETE FROM active_markets WHERE ticker = ANY(%s)", (list(tickers),))
    return max(cur.rowcount, 0)


def remove_unseen(conn: psycopg.Connection, seen_before: datetime, now: datetime) -> int:
    """Drop rows a complete discovery pass (started at `seen_before`) did not see.

    A paused market is kept until its close: an event whose markets are all paused is not
    listed under status=open, yet its markets may reopen.
    """
    cur = conn.execute(
        """
        DELETE FROM active_markets
        WHERE last_seen_at < %(seen)s
          AND NOT (lower(status) IN ('inactive', 'paused')
                   AND (close_time IS NULL OR close_time > %(now)s))
        """,
        {"seen": seen_before, "now": now},
    )
    return max(cur.rowcount, 0)


def prune_closed(conn: psycopg.Connection, closed_before: datetime) -> int:
    """Drop rows whose market closed before `closed_before` (close plus the grace period)."""
    cur = conn.execute("DELETE FROM active_markets WHERE close_time < %s", (closed_before,))
    return max(cur.rowcount, 0)


def apply_patches(conn: psycopg.Connection, patches: Sequence[MarketPatch]) -> tuple[int, int]:
    """Apply lifecycle patches: (rows removed, rows updated)."""
    leaving = [p.ticker for p in patches if p.leaves_active]
    removed = remove(conn, leaving)
    updates = [p for p in patches if not p.leaves_active and (p.active_status or p.close_time)]
    updated = 0
    if updates:
        with conn.cursor() as cur:
            cur.executemany(
                """
                UPDATE active_markets SET
                    status = coalesce(%s, status),
                    close_time = coalesce(%s, close_time),
                    updated_at = now()
                WHERE ticker = %s
                  AND (status, close_time) IS DISTINCT FROM
                      (coalesce(%s, status), coalesce(%s, close_time))
                """,
                [
                    (p.active_status, p.close_time, p.ticker, p.active_status, p.close_time)
                    for p in updates
                ],
            )
            updated = max(cur.rowcount, 0)
    return removed, updated


def count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM active_markets").fetchone()
    return int(row[0]) if row else 0


def tickers(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT ticker FROM active_markets ORDER BY ticker")]
