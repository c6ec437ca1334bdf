"""market_candles: staged COPY upserts where a corrected candle replaces the stored one."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ingestor.backfill.candle_rows import CANDLE_COLUMNS, CANDLE_VALUE_COLUMNS, Row

STAGE_TABLE = "market_candles_stage"
_KEY = ("ticker", "period_minutes", "end_period_ts")
_EXTRA_INDEX = CANDLE_COLUMNS.index("extra")

_CREATE_STAGE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE market_candles INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
).format(sql.Identifier(STAGE_TABLE))
_TRUNCATE_STAGE = sql.SQL("TRUNCATE {}").format(sql.Identifier(STAGE_TABLE))
_COPY_STAGE = sql.SQL("COPY {} ({}) FROM STDIN").format(
    sql.Identifier(STAGE_TABLE), sql.SQL(", ").join(map(sql.Identifier, CANDLE_COLUMNS))
)


def _merge_sql(source: sql.Composable) -> sql.Composed:
    cols = sql.SQL(", ").join(map(sql.Identifier, CANDLE_COLUMNS))
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in CANDLE_VALUE_COLUMNS
    )
    stored = sql.SQL(", ").join(
        sql.SQL("c.{}").format(sql.Identifier(x)) for x in CANDLE_VALUE_COLUMNS
    )
    incoming = sql.SQL(", ").join(
        sql.SQL("EXCLUDED.{}").format(sql.Identifier(x)) for x in CANDLE_VALUE_COLUMNS
    )
    key = sql.SQL(", ").join(map(sql.Identifier, _KEY))
    return sql.SQL(
        "INSERT INTO market_candles AS c ({cols}, fetched_at) "
        "SELECT {cols}, now() FROM {source} "
        "ON CONFLICT ({key}) DO UPDATE SET {updates}, fetched_at = EXCLUDED.fetched_at "
        "WHERE ({stored}) IS DISTINCT FROM ({incoming})"
    ).format(cols=cols, key=key, source=source, updates=updates, stored=stored, incoming=incoming)


_MERGE_FROM_STAGE = _merge_sql(sql.Identifier(STAGE_TABLE))


def _copy_row(row: Row) -> Sequence[Any]:
    extra = row[_EXTRA_INDEX]
    if extra is None:
        return row
    out = list(row)
    out[_EXTRA_INDEX] = Jsonb(extra)
    return out


def _unique(rows: Sequence[Row]) -> Sequence[Row]:
    """The last row per key (ON CONFLICT cannot touch one row twice in a statement)."""
    latest = {row[:3]: row for row in rows}
    return rows if len(latest) == len(rows) else list(latest.values())


def upsert_candles(conn: psycopg.Connection, rows: Sequence[Row]) -> int:
    """COPY rows into a connection-local temp table, then merge; returns rows inserted or changed.

    A row equal to the stored one is left alone (and not counted), so re-fetching a range
    writes nothing; a differing row replaces the stored one.
    """
    if not rows:
        return 0
    rows = _unique(rows)
    # The stage empties at commit, so COPY and merge must share one transaction.
    with conn.transaction() if conn.autocommit else nullcontext(), conn.cursor() as cur:
        cur.execute(_CREATE_STAGE)
        cur.execute(_TRUNCATE_STAGE)
        with cur.copy(_COPY_STAGE) as copy:
            for row in rows:
                copy.write_row(_copy_row(row))
        cur.execute(_MERGE_FROM_STAGE)
        return max(cur.rowcount, 0)


def last_end_times(
    conn: psycopg.Connection, ticker: str, periods: Sequence[int]
) -> dict[int, datetime]:
    """Newest stored end_period_ts of a market, per period."""
    rows = conn.execute(
        """
        SELECT period_minutes, max(end_period_ts) FROM market_candles
        WHERE ticker = %s AND period_minutes = ANY(%s)
        GROUP BY period_minutes
        """,
        (ticker, list(periods)),
    ).fetchall()
    return {int(p): end for p, end in rows if end is not None}


@dataclass(frozen=True)
class CandleGap:
    """A closed market whose stored candles stop before its last candle end."""

    ticker: str
    series_ticker: str | None
    strike_period: str | None
    open_time: datetime
    close_time: datetime
    settlement_ts: datetime | None
    periods: tuple[int, ...]


def closed_with_missing_tail(
    conn: psycopg.Connection,
    *,
    periods: Sequence[int],
    closed_before: datetime,
    closed_after: datetime,
    limit: int,
    exclude: Sequence[str] = (),
) -> list[CandleGap]:
    """Closed markets, oldest close first, missing candles up to their last bucket end."""
    rows = conn.execute(
        """
        WITH candidates AS (
            SELECT m.ticker, e.series_ticker, e.strike_period, m.open_time, m.close_time,
                   m.settlement_ts, p.period,
                   to_timestamp(floor(extract(epoch FROM m.close_time) / (p.period * 60))
                                * (p.period * 60)) AS last_bucket
            FROM markets m
            JOIN events e ON e.event_ticker = m.event_ticker
            CROSS JOIN unnest(%(periods)s::integer[]) AS p(period)
            WHERE m.close_time < %(before)s AND m.close_time >= %(after)s
              AND m.open_time IS NOT NULL
              AND NOT (m.ticker = ANY(%(exclude)s))
        )
        SELECT c.ticker, c.series_ticker, c.strike_period, c.open_time, c.close_time,
               c.settlement_ts, array_agg(c.period ORDER BY c.period)
        FROM candidates c
        WHERE c.last_bucket > c.open_time
          AND coalesce((SELECT max(k.end_period_ts) FROM market_candles k
                        WHERE k.ticker = c.ticker AND k.period_minutes = c.period),
                       '-infinity') < c.last_bucket
        GROUP BY c.ticker, c.series_ticker, c.strike_period, c.open_time, c.close_time,
                 c.settlement_ts
        ORDER BY c.close_time, c.ticker
        LIMIT %(limit)s
        """,
        {
            "periods": list(periods),
            "before": closed_before,
            "after": closed_after,
            "exclude": list(exclude),
            "limit": limit,
        },
    ).fetchall()
    return [CandleGap(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6])) for r in rows]


def last_end_times_many(
    conn: psycopg.Connection, tickers: Sequence[str], periods: Sequence[int]
) -> dict[str, dict[int, datetime]]:
    """Newest stored end_period_ts per market and period, for many markets at once."""
    out: dict[str, dict[int, datetime]] = {}
    if not tickers:
        return out
    rows = conn.execute(
        """
        SELECT ticker, period_minutes, max(end_period_ts) FROM market_candles
        WHERE ticker = ANY(%s) AND period_minutes = ANY(%s)
        GROUP BY ticker, period_minutes
        """,
        (list(tickers), list(periods)),
    ).fetchall()
    for ticker, period, end in rows:
        out.setdefault(ticker, {})[int(period)] = end
    return out
