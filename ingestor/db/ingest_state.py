"""ingest_state: freshness keys, one timestamp format, one writer helper.

Values are ISO-8601 UTC with microseconds and a Z suffix (2026-11-25T16:30:00.123456Z).
Every write records the writing role; reads return aware datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from ingestor import contract
from ingestor.guardrails import Guardrails, current


@dataclass(frozen=True)
class StateEntry:
    key: str
    value: datetime | None
    raw_value: str
    updated_at: datetime
    updated_by: str

    def age_seconds(self, now: datetime) -> float | None:
        """Freshness age: since the last write for cursor keys, since the value otherwise."""
        if self.key in contract.CURSOR_STATE_KEYS:
            return (now - self.updated_at).total_seconds()
        return (now - self.value).total_seconds() if self.value else None


def format_ts(when: datetime) -> str:
    """The one on-disk format: ISO-8601 UTC with microseconds and Z."""
    if when.tzinfo is None:
        raise ValueError("ingest_state timestamps must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Parse a stored value (also accepts epoch seconds written by older tools)."""
    stripped = text.strip()
    if stripped.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(stripped), UTC)
    return datetime.fromisoformat(stripped.replace("Z", "+00:00")).astimezone(UTC)


def write(
    conn: psycopg.Connection,
    key: str,
    when: datetime,
    role: str,
    guardrails: Guardrails | None = None,
) -> None:
    """Upsert `key` = `when`, recorded as written by `role`, which must own the key."""
    owners = contract.state_key_owners(key)
    if role not in owners:
        raise ValueError(f"role {role} does not own ingest_state key {key!r} (owners: {owners})")
    (guardrails or current()).check_state_write(key)
    conn.execute(
        """
        INSERT INTO ingest_state (key, value, updated_at, updated_by)
        VALUES (%s, %s, now(), %s)
        ON CONFLICT (key) DO UPDATE
            SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at,
                updated_by = EXCLUDED.updated_by
        """,
        (key, format_ts(when), role),
    )


def _entry(row: tuple[str, str, datetime, str]) -> StateEntry:
    key, raw, updated_at, updated_by = row
    try:
        value: datetime | None = parse_ts(raw)
    except ValueError:
        value = None
    return StateEntry(key, value, raw, updated_at, updated_by)


def read(conn: psycopg.Connection, key: str) -> StateEntry | None:
    row = conn.execute(
        "SELECT key, value, updated_at, updated_by FROM ingest_state WHERE key = %s", (key,)
    ).fetchone()
    return _entry(row) if row else None


def read_all(conn: psycopg.Connection) -> dict[str, StateEntry]:
    rows = conn.execute(
        "SELECT key, value, updated_at, updated_by FROM ingest_state ORDER BY key"
    ).fetchall()
    return {r[0]: _entry(r) for r in rows}
