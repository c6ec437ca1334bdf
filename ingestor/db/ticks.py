"""market_ticks (COPY, replay-safe) and market_quotes_latest (newest quote per market).

Ticks reach the server as COPY text lines built once, when a tick is received (see
`encode_row`). A batch is written by plain COPY inside a savepoint; when it hits a row that
is already stored (a replayed frame) the savepoint is rolled back and the batch goes through a
temporary staging table with INSERT ... ON CONFLICT DO NOTHING. A batch the server rejects as
bad data is written row by row so one bad row cannot hold back the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal, NamedTuple

import psycopg
from psycopg import errors, sql

log = logging.getLogger(__name__)

VALUE_COLUMNS: tuple[str, ...] = (
    "price_dollars",
    "yes_bid_dollars",
    "yes_ask_dollars",
    "yes_bid_size_fp",
    "yes_ask_size_fp",
    "last_trade_size_fp",
    "volume_fp",
    "open_interest_fp",
)
TICK_COLUMNS: tuple[str, ...] = (
    "ticker",
    "ts",
    "fingerprint",
    "received_at",
    *VALUE_COLUMNS,
    "dollar_volume",
    "dollar_open_interest",
    "extra",
)
STAGE_TABLE = "ws_ticks_stage"

Strategy = Literal["copy", "staged"]

_COLS = sql.SQL(", ").join(sql.Identifier(c) for c in TICK_COLUMNS)
_COPY_TICKS = sql.SQL("COPY market_ticks ({}) FROM STDIN").format(_COLS)
_CREATE_STAGE = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE market_ticks INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
).format(sql.Identifier(STAGE_TABLE))
_COPY_STAGE = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(STAGE_TABLE), _COLS)
_MERGE_STAGE = sql.SQL(
    "INSERT INTO market_ticks ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING"
).format(cols=_COLS, stage=sql.Identifier(STAGE_TABLE))
_CLEAR_STAGE = sql.SQL("DELETE FROM {}").format(sql.Identifier(STAGE_TABLE))

_NULL = "\\N"


class TickWriteResult(NamedTuple):
    """What one batch write did: rows stored, rows already present, rows the server refused."""

    inserted: int
    duplicates: int
    rejected: tuple[int, ...]
    path: str


def copy_escape(text: str) -> str:
    """A value as COPY text: backslash, tab, newline and carriage return escaped."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def join_numeric(texts: Sequence[str | None]) -> str:
    """The VALUE_COLUMNS part of a COPY line from the values' decimal texts (NULL as \\N)."""
    return "\t".join([_NULL if t is None else t for t in texts])


def encode_row(
    ticker: str,
    ts_text: str,
    fingerprint: int,
    received_text: str,
    numeric: str,
    dollar_volume: int | None,
    dollar_open_interest: int | None,
    extra_json: str | None,
) -> str:
    """One COPY text line in TICK_COLUMNS order; `numeric` comes from `join_numeric`
    (ticker and extra are escaped here)."""
    return (
        f"{copy_escape(ticker)}\t{ts_text}\t{fingerprint}\t{received_text}\t{numeric}\t"
        f"{_NULL if dollar_volume is None else dollar_volume}\t"
        f"{_NULL if dollar_open_interest is None else dollar_open_interest}\t"
        f"{_NULL if extra_json is None else copy_escape(extra_json)}\n"
    )


def copy_plain(conn: psycopg.Connection, lines: Sequence[str]) -> int:
    """COPY lines straight into market_ticks; raises UniqueViolation on a stored row."""
    with conn.cursor() as cur:
        with cur.copy(_COPY_TICKS) as copy:
            copy.write("".join(lines))
        return cur.rowcount


def copy_staged(conn: psycopg.Connection, lines: Sequence[str]) -> int:
    """COPY lines into the session's staging table, then insert the new ones; returns inserted."""
    with conn.cursor() as cur:
        cur.execute(_CREATE_STAGE)
        cur.execute(_CLEAR_STAGE)
        with cur.copy(_COPY_STAGE) as copy:
            copy.write("".join(lines))
        cur.execute(_MERGE_STAGE)
        inserted = cur.rowcount
        cur.execute(_CLEAR_STAGE)
        return inserted


def _row_by_row(conn: psycopg.Connection, lines: Sequence[str]) -> tuple[int, tuple[int, ...]]:
    inserted = 0
    rejected: list[int] = []
    for i, line in enumerate(lines):
        try:
            with conn.transaction():
                inserted += copy_staged(conn, [line])
        except psycopg.DataError as exc:
            rejected.append(i)
            log.error("tick rejected by the database error=%s line=%r",
                      str(exc).splitlines()[0], line[:200])
    return inserted, tuple(rejected)


def write_ticks(
    conn: psycopg.Connection, lines: Sequence[str], strategy: Strategy = "copy"
) -> TickWriteResult:
    """Store a batch of encoded ticks exactly once; must run inside a transaction."""
    if not lines:
        return TickWriteResult(0, 0, (), "empty")
    n = len(lines)
    if strategy == "copy":
        try:
            with conn.transaction():
                return TickWriteResult(copy_plain(conn, lines), 0, (), "copy")
        except errors.UniqueViolation:
            pass
        except psycopg.DataError:
            inserted, rejected = _row_by_row(conn, lines)
            return TickWriteResult(inserted, n - inserted - len(rejected), rejected, "rows")
    try:
        with conn.transaction():
            inserted = copy_staged(conn, lines)
        return TickWriteResult(inserted, n - inserted, (), "staged")
    except psycopg.DataError:
        inserted, rejected = _row_by_row(conn, lines)
        return TickWriteResult(inserted, n - inserted - len(rejected), rejected, "rows")


class QuoteRow(NamedTuple):
    """The newest quote of one market, for market_quotes_latest."""

    ticker: str
    ts: datetime
    received_at: datetime
    price_dollars: Decimal | None
    yes_bid_dollars: Decimal | None
    yes_ask_dollars: Decimal | None
    volume_fp: Decimal | None
    open_interest_fp: Decimal | None


_UPSERT_QUOTES = """
INSERT INTO market_quotes_latest AS q
    (ticker, ts, received_at, price_dollars, yes_bid_dollars, yes_ask_dollars,
     volume_fp, open_interest_fp, updated_at)
SELECT u.ticker, u.ts, u.received_at, u.price, u.bid, u.ask, u.volume, u.oi, now()
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::numeric[], %s::numeric[],
            %s::numeric[], %s::numeric[], %s::numeric[])
     AS u(ticker, ts, received_at, price, bid, ask, volume, oi)
ON CONFLICT (ticker) DO UPDATE SET
    ts = EXCLUDED.ts,
    received_at = EXCLUDED.received_at,
    price_dollars = EXCLUDED.price_dollars,
    yes_bid_dollars = EXCLUDED.yes_bid_dollars,
    yes_ask_dollars = EXCLUDED.yes_ask_dollars,
    volume_fp = EXCLUDED.volume_fp,
    open_interest_fp = EXCLUDED.open_interest_fp,
    updated_at = EXCLUDED.updated_at
WHERE (q.ts, q.received_at) < (EXCLUDED.ts, EXCLUDED.received_at)
"""


def upsert_quotes(conn: psycopg.Connection, quotes: Sequence[QuoteRow]) -> int:
    """Upsert one row per market where it is newer: later exchange time, or the same time
    received later (legacy frames carry whole seconds)."""
    if not quotes:
        return 0
    ordered = sorted(quotes, key=lambda q: q.ticker)
    columns = [list(col) for col in zip(*ordered, strict=True)]
    with conn.cursor() as cur:
        cur.execute(_UPSERT_QUOTES, columns)
        return cur.rowcount
