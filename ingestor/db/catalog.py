"""events and markets: idempotent upserts keyed on the tickers, newer data never overwritten.

`updated_at` holds the as-of time of a row's data (the wall time just before the API call
that returned it, or the receive time of a lifecycle message applied to it). An upsert only
replaces a row with data at least as new, so a slow page can never roll a market back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ingestor.catalog.batch import CatalogBatch
from ingestor.catalog.lifecycle import MarketPatch
from ingestor.catalog.rows import (
    EVENT_COLUMNS,
    EVENT_JSON_COLUMNS,
    MARKET_COLUMNS,
    MARKET_JSON_COLUMNS,
)
from ingestor.db import active_markets


def _values(
    row: Mapping[str, Any], columns: Sequence[str], json_columns: frozenset[str]
) -> list[Any]:
    out = []
    for name in columns:
        value = row.get(name)
        if name in json_columns and value is not None:
            value = Jsonb(value)
        out.append(value)
    return out


def _upsert_sql(table: str, key: str, columns: Sequence[str]) -> sql.Composed:
    cols = [*columns, "updated_at"]
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in cols
        if c != key
    )
    return sql.SQL(
        "INSERT INTO {table} ({cols}) VALUES ({params}) "
        "ON CONFLICT ({key}) DO UPDATE SET {updates} "
        "WHERE {table}.updated_at <= EXCLUDED.updated_at"
    ).format(
        table=sql.Identifier(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        params=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        key=sql.Identifier(key),
        updates=updates,
    )


_EVENTS_UPSERT = _upsert_sql("events", "event_ticker", EVENT_COLUMNS)
_MARKETS_UPSERT = _upsert_sql("markets", "ticker", MARKET_COLUMNS)


def upsert_events(
    conn: psycopg.Connection, rows: Sequence[Mapping[str, Any]], as_of: datetime
) -> int:
    """Insert or refresh events; returns how many rows were written."""
    if not rows:
        return 0
    params = [[*_values(r, EVENT_COLUMNS, EVENT_JSON_COLUMNS), as_of] for r in rows]
    with conn.cursor() as cur:
        cur.executemany(_EVENTS_UPSERT, params)
        return max(cur.rowcount, 0)


def upsert_markets(
    conn: psycopg.Connection, rows: Sequence[Mapping[str, Any]], as_of: datetime
) -> int:
    """Insert or refresh markets (their events must exist); returns how many rows were written."""
    if not rows:
        return 0
    params = [[*_values(r, MARKET_COLUMNS, MARKET_JSON_COLUMNS), as_of] for r in rows]
    with conn.cursor() as cur:
        cur.executemany(_MARKETS_UPSERT, params)
        return max(cur.rowcount, 0)


def apply_patches(conn: psycopg.Connection, patches: Sequence[MarketPatch]) -> int:
    """Apply lifecycle patches to markets; returns how many markets actually changed."""
    if not patches:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            """
            UPDATE markets SET
                status = coalesce(%(status)s, status),
                result = coalesce(%(result)s, result),
                settlement_value_dollars = coalesce(%(settlement_value_dollars)s,
                                                    settlement_value_dollars),
                settlement_ts = coalesce(%(settlement_ts)s, settlement_ts),
                close_time = coalesce(%(close_time)s, close_time),
                updated_at = greatest(updated_at, %(as_of)s)
            WHERE ticker = %(ticker)s
              AND (status, result, settlement_value_dollars, settlement_ts, close_time)
                  IS DISTINCT FROM
                  (coalesce(%(status)s, status), coalesce(%(result)s, result),
                   coalesce(%(settlement_value_dollars)s, settlement_value_dollars),
                   coalesce(%(settlement_ts)s, settlement_ts),
                   coalesce(%(close_time)s, close_time))
            """,
            [
                {
                    "ticker": p.ticker,
                    "status": p.status,
                    "result": p.result,
                    "settlement_value_dollars": p.settlement_value_dollars,
                    "settlement_ts": p.settlement_ts,
                    "close_time": p.close_time,
                    "as_of": p.as_of,
                }
                for p in patches
            ],
        )
        return max(cur.rowcount, 0)


@dataclass(frozen=True)
class StoredMarket:
    """A stored market with what candle fetching needs from its event."""

    ticker: str
    event_ticker: str
    series_ticker: str | None
    strike_period: str | None
    status: str | None
    open_time: datetime | None
    close_time: datetime | None
    settlement_ts: datetime | None


_STORED = """
    SELECT m.ticker, m.event_ticker, e.series_ticker, e.strike_period, m.status,
           m.open_time, m.close_time, m.settlement_ts
    FROM markets m JOIN events e ON e.event_ticker = m.event_ticker
"""


def stored_markets(conn: psycopg.Connection, tickers: Sequence[str]) -> list[StoredMarket]:
    """The stored markets among `tickers`."""
    if not tickers:
        return []
    rows = conn.execute(_STORED + " WHERE m.ticker = ANY(%s) ORDER BY m.ticker", (list(tickers),))
    return [StoredMarket(*r) for r in rows.fetchall()]


def markets_open_during(
    conn: psycopg.Connection, start: datetime, end: datetime, limit: int
) -> list[StoredMarket]:
    """Markets whose trading window overlaps [start, end] (for gaps that name no markets)."""
    rows = conn.execute(
        _STORED + " WHERE m.open_time <= %s AND (m.close_time IS NULL OR m.close_time >= %s)"
        " ORDER BY m.close_time NULLS LAST, m.ticker LIMIT %s",
        (end, start, limit),
    )
    return [StoredMarket(*r) for r in rows.fetchall()]


# Kalshi moves initialized -> active at open_time without a message; this is the status then.
INFERRED_OPEN_STATUS = "active"
_UNOPENED = ("initialized", "unopened")


def open_due(conn: psycopg.Connection, now: datetime) -> list[StoredMarket]:
    """Mark stored unopened markets whose open_time has come as active; returns them.

    Their as-of time is left alone, so the next listing of the market (newer by definition)
    replaces the inferred status with the exchange's.
    """
    rows = conn.execute(
        """
        UPDATE markets m SET status = %(status)s
        FROM events e
        WHERE e.event_ticker = m.event_ticker
          AND lower(m.status) = ANY(%(unopened)s)
          AND m.open_time <= %(now)s
          AND (m.close_time IS NULL OR m.close_time > %(now)s)
        RETURNING m.ticker, m.event_ticker, e.series_ticker, e.strike_period, m.status,
                  m.open_time, m.close_time, m.settlement_ts
        """,
        {"status": INFERRED_OPEN_STATUS, "unopened": list(_UNOPENED), "now": now},
    ).fetchall()
    return [StoredMarket(*r) for r in rows]


def series_tickers(conn: psycopg.Connection) -> list[str]:
    """Series of the stored events (every stored event passed the strike filter)."""
    rows = conn.execute(
        "SELECT DISTINCT series_ticker FROM events WHERE series_ticker IS NOT NULL ORDER BY 1"
    )
    return [r[0] for r in rows.fetchall()]


def closed_missing_settlement(
    conn: psycopg.Connection,
    closed_before: datetime,
    closed_after: datetime,
    limit: int,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Closed markets without a settlement value, least recently refreshed first."""
    rows = conn.execute(
        """
        SELECT ticker FROM markets
        WHERE close_time < %s AND close_time >= %s
          AND settlement_value_dollars IS NULL
          AND NOT (ticker = ANY(%s))
        ORDER BY updated_at, close_time, ticker
        LIMIT %s
        """,
        (closed_before, closed_after, list(exclude), limit),
    )
    return [r[0] for r in rows.fetchall()]


@dataclass(frozen=True)
class StoredCounts:
    events: int
    markets: int
    active_upserted: int
    active_removed: int


def store_batch(
    conn: psycopg.Connection,
    batch: CatalogBatch,
    as_of: datetime,
    *,
    add_active: bool,
) -> StoredCounts:
    """Store one page in one transaction: events, markets, and their active_markets rows.

    Markets seen in an ended status leave active_markets at once; open or paused ones are
    added (with last_seen_at = as_of) only when `add_active` (discovery keeps that set).
    """
    events = upsert_events(conn, batch.events, as_of)
    markets = upsert_markets(conn, batch.markets, as_of)
    live = [r for r in batch.records if r.active]
    ended = [r.ticker for r in batch.records if not r.active and r.status is not None]
    added = active_markets.upsert(conn, [r.active_row() for r in live], as_of) if add_active else 0
    removed = active_markets.remove(conn, ended)
    return StoredCounts(events, markets, added, removed)
