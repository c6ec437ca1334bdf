"""Reads of ws-owned tables the rest role acts on: lifecycle_events and ws_gaps (SELECT only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from ingestor.catalog.lifecycle import LifecycleRow

# Lifecycle event types that change a market's status, result or close time.
STATUS_EVENT_TYPES = ("determined", "settled", "deactivated", "activated", "close_date_updated")


def db_now(conn: psycopg.Connection) -> datetime:
    """The server's transaction time (the clock lifecycle_events.received_at is written with)."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


def lifecycle_start(conn: psycopg.Connection) -> datetime:
    """Where to start reading after a restart: the oldest as-of time of an active market."""
    row = conn.execute(
        """
        SELECT coalesce(min(m.updated_at), now())
        FROM active_markets a JOIN markets m ON m.ticker = a.ticker
        """
    ).fetchone()
    assert row is not None
    return row[0]


def lifecycle_since(
    conn: psycopg.Connection, since: datetime, after_id: int = 0, limit: int = 5000
) -> list[LifecycleRow]:
    """Status-changing messages received since `since` for stored markets, newer than the row.

    A message older than the stored market's as-of time (markets.updated_at) is already
    reflected there and is not returned, which makes re-reading an overlap harmless.
    """
    rows = conn.execute(
        """
        SELECT l.id, l.market_ticker, l.event_type, l.received_at, l.close_ts, l.settled_ts,
               l.result, l.settlement_value_dollars, l.is_deactivated, m.status
        FROM lifecycle_events l
        JOIN markets m ON m.ticker = l.market_ticker
        WHERE l.received_at >= %s AND l.id > %s
          AND l.msg_type = 'market_lifecycle_v2'
          AND l.event_type = ANY(%s)
          AND l.received_at >= m.updated_at
        ORDER BY l.id
        LIMIT %s
        """,
        (since, after_id, list(STATUS_EVENT_TYPES), limit),
    ).fetchall()
    return [LifecycleRow(*r) for r in rows]


@dataclass(frozen=True)
class WsGap:
    """A window in which the ws role could not see ticks."""

    id: int
    started_at: datetime
    ended_at: datetime
    markets: tuple[str, ...]
    market_count: int


def ended_gaps(conn: psycopg.Connection, after_id: int, since: datetime, limit: int) -> list[WsGap]:
    """Closed gaps with id > after_id that ended at or after `since`, oldest first."""
    rows = conn.execute(
        """
        SELECT id, started_at, ended_at, markets, market_count FROM ws_gaps
        WHERE id > %s AND ended_at IS NOT NULL AND ended_at >= %s
        ORDER BY id
        LIMIT %s
        """,
        (after_id, since, limit),
    ).fetchall()
    return [WsGap(r[0], r[1], r[2], tuple(r[3] or ()), r[4]) for r in rows]


def oldest_open_gap_id(conn: psycopg.Connection, after_id: int) -> int | None:
    """The first gap after `after_id` still open (its window cannot be repaired yet)."""
    row = conn.execute(
        "SELECT min(id) FROM ws_gaps WHERE id > %s AND ended_at IS NULL", (after_id,)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
