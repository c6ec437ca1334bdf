"""Numbered plain-SQL migrations in `sql/`, applied in order, each in its own transaction.

Applied files are recorded in schema_version with a checksum; a changed file is refused.
A session-level advisory lock makes concurrent `ingestor migrate` runs take turns.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from ingestor.db.urls import mask_url
from ingestor.errors import MigrationError, SchemaBehind

log = logging.getLogger(__name__)

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
ADVISORY_LOCK_ID = 7_261_736_875_001  # arbitrary, constant: "kalshi-ingestor migrate"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


def sql_dir() -> Path:
    """INGESTOR_SQL_DIR, else the `sql/` folder beside the package."""
    env = os.environ.get("INGESTOR_SQL_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "sql"


def discover(directory: Path | None = None) -> list[Migration]:
    """Migration files in version order; duplicate versions are an error."""
    directory = directory or sql_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations folder {directory} not found (set INGESTOR_SQL_DIR)")
    found: dict[int, Migration] = {}
    for path in sorted(directory.iterdir()):
        match = MIGRATION_FILE.match(path.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version}: {path.name}")
        found[version] = Migration(version, match.group(2), path, path.read_text())
    return [found[v] for v in sorted(found)]


def required_version(migrations: list[Migration] | None = None) -> int:
    migrations = discover() if migrations is None else migrations
    return migrations[-1].version if migrations else 0


def applied(conn: psycopg.Connection) -> dict[int, AppliedMigration]:
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute(
        "SELECT version, name, checksum, applied_at FROM schema_version ORDER BY version"
    ).fetchall()
    return {r[0]: AppliedMigration(*r) for r in rows}


def _check_checksums(migrations: list[Migration], done: dict[int, AppliedMigration]) -> None:
    changed = [
        m for m in migrations if m.version in done and done[m.version].checksum != m.checksum
    ]
    if changed:
        names = ", ".join(m.path.name for m in changed)
        raise MigrationError(
            f"applied migration file(s) changed since they were applied: {names}. "
            "Restore the original file(s) and add a new numbered migration instead; "
            "nothing was applied"
        )


def _check_vector(conn: psycopg.Connection, url: str) -> None:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')"
    ).fetchone()
    if not row or not row[0]:
        raise MigrationError(
            f"the PostgreSQL server at {mask_url(url)} lacks the pgvector extension 'vector'. "
            "Install it on the server (Debian/Ubuntu: apt install postgresql-<version>-pgvector; "
            "see https://github.com/pgvector/pgvector), or unset DATABASE_URL to use the "
            "embedded PostgreSQL 16 that ships with pgvector"
        )


def migrate(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply pending migrations; returns the ones applied. `conn` must be in autocommit mode."""
    migrations = discover() if migrations is None else migrations
    if not conn.autocommit:
        raise ValueError("migrate needs an autocommit connection")
    url = conn.info.dsn
    conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
    try:
        done = applied(conn)
        _check_checksums(migrations, done)
        pending = [m for m in migrations if m.version not in done]
        if pending and "vector" in "".join(m.sql for m in pending):
            _check_vector(conn, url)
        for m in pending:
            log.info("applying migration version=%s name=%s", m.version, m.name)
            try:
                with conn.transaction():
                    conn.execute(m.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_version (version, name, checksum) VALUES (%s, %s, %s)",
                        (m.version, m.name, m.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {m.path.name} failed and was rolled back: {str(exc).strip()}"
                ) from None
        return pending
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_ID,))


def status_rows(
    conn: psycopg.Connection, migrations: list[Migration] | None = None
) -> list[tuple[Migration, AppliedMigration | None, str]]:
    """(migration, applied record, state) with state applied | pending | CHANGED."""
    migrations = discover() if migrations is None else migrations
    done = applied(conn)
    rows: list[tuple[Migration, AppliedMigration | None, str]] = []
    for m in migrations:
        rec = done.get(m.version)
        if rec is None:
            state = "pending"
        else:
            state = "applied" if rec.checksum == m.checksum else "CHANGED"
        rows.append((m, rec, state))
    return rows


def current_version(conn: psycopg.Connection) -> int:
    done = applied(conn)
    return max(done) if done else 0


def check_schema(conn: psycopg.Connection, needed: int | None = None) -> int:
    """Raise SchemaBehind unless the database has every migration this program knows."""
    needed = required_version() if needed is None else needed
    have = current_version(conn)
    if have < needed:
        raise SchemaBehind(
            f"database schema is at version {have}, this program needs {needed}: "
            "run `ingestor migrate` with an admin DATABASE_URL"
        )
    return have
