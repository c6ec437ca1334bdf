"""Monthly partitions of market_ticks and market_candles: create ahead, list, drop old."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

PARTITIONED = ("market_ticks", "market_candles")
_NAME = re.compile(r"^(market_ticks|market_candles)_p(\d{4})_(\d{2})$")


@dataclass(frozen=True)
class Partition:
    parent: str
    name: str
    month: datetime  # first instant of the month, UTC
    rows_estimate: int


def ensure_ahead(conn: psycopg.Connection, months_ahead: int) -> int:
    """Create missing monthly partitions through `months_ahead`; returns how many were made."""
    row = conn.execute("SELECT ingestor_ensure_partitions(%s)", (months_ahead,)).fetchone()
    created = int(row[0]) if row else 0
    if created:
        log.info("partitions created count=%s months_ahead=%s", created, months_ahead)
    return created


def list_partitions(conn: psycopg.Connection) -> list[Partition]:
    rows = conn.execute(
        """
        SELECT p.relname, c.relname, c.reltuples::bigint
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = ANY(%s)
        ORDER BY c.relname
        """,
        (list(PARTITIONED),),
    ).fetchall()
    out = []
    for parent, name, tuples in rows:
        match = _NAME.match(name)
        if match:
            month = datetime(int(match.group(2)), int(match.group(3)), 1, tzinfo=UTC)
            out.append(Partition(parent, name, month, max(int(tuples), 0)))
    return out


def default_partition_rows(conn: psycopg.Connection) -> dict[str, int]:
    out = {}
    for parent in PARTITIONED:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(f"{parent}_default"))
        row = conn.execute(query).fetchone()
        out[parent] = int(row[0]) if row else 0
    return out


def drop_before(conn: psycopg.Connection, cutoff: datetime, *, dry_run: bool = False) -> list[str]:
    """Detach and drop whole months that end on or before `cutoff`; returns their names."""
    dropped = []
    for part in list_partitions(conn):
        month_end = (
            part.month.replace(year=part.month.year + 1, month=1)
            if part.month.month == 12
            else part.month.replace(month=part.month.month + 1)
        )
        if month_end > cutoff:
            continue
        dropped.append(part.name)
        if dry_run:
            continue
        with conn.transaction():
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                    sql.Identifier(part.parent), sql.Identifier(part.name)
                )
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(part.name)))
        log.info("partition dropped name=%s", part.name)
    return dropped
