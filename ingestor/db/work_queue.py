"""work_queue: the enqueue side (rest, portal) with at most one live job per dedupe key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingestor.guardrails import Guardrails, current

JOB_BACKFILL_MARKET = "backfill_market"
STATUSES = ("pending", "running", "done", "failed")


def enqueue(
    conn: psycopg.Connection,
    job_type: str,
    jobs: Sequence[tuple[str | None, Mapping[str, Any]]],
    *,
    max_attempts: int = 5,
    guardrails: Guardrails | None = None,
) -> int:
    """Insert (dedupe_key, payload) jobs as pending; a key with a live job is skipped.

    Returns how many jobs were inserted. Relies on the unique partial index
    work_queue_live_dedupe_idx on (job_type, dedupe_key) WHERE status IN (pending, running).
    """
    (guardrails or current()).check_queue("enqueue")
    if not jobs:
        return 0
    inserted = 0
    with conn.cursor() as cur:
        for key, payload in jobs:
            cur.execute(
                """
                INSERT INTO work_queue (job_type, dedupe_key, payload, max_attempts)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (job_type, dedupe_key)
                    WHERE status IN ('pending', 'running') AND dedupe_key IS NOT NULL
                DO NOTHING
                """,
                (job_type, key, Jsonb(dict(payload)), max_attempts),
            )
            inserted += max(cur.rowcount, 0)
    return inserted


def counts_by_status(conn: psycopg.Connection, job_type: str | None = None) -> dict[str, int]:
    """Jobs per status (every status present, zero when none)."""
    rows = conn.execute(
        """
        SELECT status, count(*) FROM work_queue
        WHERE %(job_type)s::text IS NULL OR job_type = %(job_type)s
        GROUP BY status
        """,
        {"job_type": job_type},
    ).fetchall()
    out = dict.fromkeys(STATUSES, 0)
    out.update({status: int(n) for status, n in rows})
    return out
