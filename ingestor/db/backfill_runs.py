"""backfill_runs: one row per backfill pass, updated as it goes, for the portal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

RUN_STATUSES = ("running", "completed", "failed", "interrupted")


@dataclass
class RunProgress:
    """The counters of a running pass."""

    markets_total: int = 0
    markets_done: int = 0
    candles_written: int = 0
    requests: int = 0
    errors: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def start(
    conn: psycopg.Connection,
    window_start: datetime | None,
    window_end: datetime | None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Open a run row (status running); returns its id."""
    row = conn.execute(
        """
        INSERT INTO backfill_runs (window_start, window_end, detail)
        VALUES (%s, %s, %s) RETURNING id
        """,
        (window_start, window_end, Jsonb(detail or {})),
    ).fetchone()
    assert row is not None
    return int(row[0])


def update(
    conn: psycopg.Connection, run_id: int, progress: RunProgress, status: str = "running"
) -> None:
    """Record progress; a final status also sets finished_at."""
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown backfill run status {status!r}; one of {RUN_STATUSES}")
    conn.execute(
        """
        UPDATE backfill_runs SET
            markets_total = %s, markets_done = %s, candles_written = %s, requests = %s,
            errors = %s, detail = %s, status = %s, updated_at = now(),
            finished_at = CASE WHEN %s = 'running' THEN NULL ELSE now() END
        WHERE id = %s
        """,
        (
            progress.markets_total,
            progress.markets_done,
            progress.candles_written,
            progress.requests,
            progress.errors,
            Jsonb(progress.detail),
            status,
            status,
            run_id,
        ),
    )


def recent(conn: psycopg.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs first, as dicts (for the portal and `ingestor status`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT id, started_at, finished_at, status, window_start, window_end,
                   markets_total, markets_done, candles_written, requests, errors, detail,
                   updated_at
            FROM backfill_runs ORDER BY started_at DESC, id DESC LIMIT %s
            """,
            (limit,),
        )
        return list(cur.fetchall())
