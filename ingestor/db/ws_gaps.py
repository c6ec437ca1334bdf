"""ws_gaps: windows in which a WS shard could not see (or had to drop) ticks.

A gap is identified by (shard_id, shard_count, reason, started_at); writing the same gap again
updates it, so an open gap can be closed later and a retried batch never duplicates a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# Reasons written by the ws role.
STARTUP = "startup"
SHUTDOWN = "shutdown"
DISCONNECTED = "disconnected"
STALE = "stale"
SUBSCRIPTION_LOST = "subscription_lost"
DROPPED = "dropped"
REJECTED = "rejected"
REASONS = (STARTUP, SHUTDOWN, DISCONNECTED, STALE, SUBSCRIPTION_LOST, DROPPED, REJECTED)


@dataclass(frozen=True, slots=True)
class GapRecord:
    """The full state of one gap; ended_at None while it is still open."""

    reason: str
    started_at: datetime
    ended_at: datetime | None = None
    markets: tuple[str, ...] = ()
    dropped_ticks: int = 0
    detail: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StoredGap:
    """A ws_gaps row as read back."""

    id: int
    shard_id: int
    shard_count: int
    reason: str
    started_at: datetime
    ended_at: datetime | None
    markets: list[str]
    market_count: int
    dropped_ticks: int
    detail: dict[str, Any] | None


_UPDATE = """
UPDATE ws_gaps
SET ended_at = %s, markets = %s, market_count = %s, dropped_ticks = %s, detail = %s
WHERE shard_id = %s AND shard_count = %s AND reason = %s AND started_at = %s
"""
_INSERT = """
INSERT INTO ws_gaps
    (shard_id, shard_count, reason, started_at, ended_at, markets, market_count,
     dropped_ticks, detail)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
_SELECT = """
SELECT id, shard_id, shard_count, reason, started_at, ended_at, markets, market_count,
       dropped_ticks, detail
FROM ws_gaps
"""


def upsert(conn: psycopg.Connection, shard_id: int, shard_count: int, gap: GapRecord) -> None:
    """Write a gap's current state (insert the first time, update after)."""
    markets = sorted(gap.markets)
    detail = Jsonb(gap.detail) if gap.detail is not None else None
    with conn.cursor() as cur:
        cur.execute(
            _UPDATE,
            (gap.ended_at, markets, len(markets), gap.dropped_ticks, detail,
             shard_id, shard_count, gap.reason, gap.started_at),
        )
        if cur.rowcount == 0:
            cur.execute(
                _INSERT,
                (shard_id, shard_count, gap.reason, gap.started_at, gap.ended_at, markets,
                 len(markets), gap.dropped_ticks, detail),
            )


def upsert_many(
    conn: psycopg.Connection, shard_id: int, shard_count: int, gaps: Sequence[GapRecord]
) -> None:
    """Write several gaps in order."""
    for gap in gaps:
        upsert(conn, shard_id, shard_count, gap)


def _stored(row: tuple[Any, ...]) -> StoredGap:
    return StoredGap(*row)


def open_gaps(conn: psycopg.Connection, shard_id: int, shard_count: int) -> list[GapRecord]:
    """Gaps of this shard that are still open (left by an earlier run or still going)."""
    rows = conn.execute(
        _SELECT
        + "WHERE shard_id = %s AND shard_count = %s AND ended_at IS NULL ORDER BY started_at",
        (shard_id, shard_count),
    ).fetchall()
    return [
        GapRecord(g.reason, g.started_at, None, tuple(g.markets), g.dropped_ticks, g.detail)
        for g in map(_stored, rows)
    ]


def list_gaps(
    conn: psycopg.Connection, since: datetime | None = None, shard_id: int | None = None
) -> list[StoredGap]:
    """Gaps overlapping [since, now) (all when since is None), oldest first."""
    rows = conn.execute(
        _SELECT
        + "WHERE (%(since)s::timestamptz IS NULL OR ended_at IS NULL OR ended_at >= %(since)s) "
        "AND (%(shard)s::integer IS NULL OR shard_id = %(shard)s) "
        "ORDER BY started_at, id",
        {"since": since, "shard": shard_id},
    ).fetchall()
    return [_stored(r) for r in rows]
