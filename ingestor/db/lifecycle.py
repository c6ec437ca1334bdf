"""lifecycle_events: market and event lifecycle messages with their raw payload, stored once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from ingestor.stream.rows import LifecycleRow

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO lifecycle_events
    (msg_type, event_type, market_ticker, event_ticker, ts, received_at, open_ts, close_ts,
     determination_ts, settled_ts, result, settlement_value_dollars, is_deactivated,
     fingerprint, raw)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (fingerprint) DO NOTHING
"""


def _params(r: LifecycleRow) -> tuple[object, ...]:
    return (
        r.msg_type, r.event_type, r.market_ticker, r.event_ticker, r.ts, r.received_at,
        r.open_ts, r.close_ts, r.determination_ts, r.settled_ts, r.result,
        r.settlement_value_dollars, r.is_deactivated, r.fingerprint, r.raw_json,
    )


def insert_events(
    conn: psycopg.Connection, rows: Sequence[LifecycleRow]
) -> tuple[int, tuple[int, ...]]:
    """Insert rows not stored yet (by fingerprint); returns (inserted, indexes rejected)."""
    if not rows:
        return 0, ()
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_INSERT, [_params(r) for r in rows], returning=False)
            return max(cur.rowcount, 0), ()
    except psycopg.DataError:
        pass
    inserted = 0
    rejected: list[int] = []
    for i, row in enumerate(rows):
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(_INSERT, _params(row))
                inserted += cur.rowcount
        except psycopg.DataError as exc:
            rejected.append(i)
            log.error("lifecycle event rejected by the database error=%s fingerprint=%s",
                      str(exc).splitlines()[0], row.fingerprint)
    return inserted, tuple(rejected)
