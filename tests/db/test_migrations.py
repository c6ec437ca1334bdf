"""Migrations against a real PostgreSQL: order, records, checksums, concurrency, status."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from ingestor.db import migrations
from ingestor.errors import MigrationError, SchemaBehind

CONTRACT_TABLES = {
    "events", "markets", "active_markets", "market_candles", "market_ticks", "lifecycle_events",
    "work_queue", "prediction_runs", "market_predictions", "rag_documents", "ingest_state",
    "schema_version", "ws_gaps", "market_quotes_latest", "backfill_runs",
}


def _tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    ).fetchall()
    return {r[0] for r in rows}


def test_migrate_creates_every_contract_table_and_records_versions(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        applied = migrations.migrate(conn)
        assert [m.version for m in applied] == [m.version for m in migrations.discover()]
        assert _tables(conn) == CONTRACT_TABLES
        rows = conn.execute("SELECT version, name, checksum FROM schema_version").fetchall()
        assert [(v, n, c) for v, n, c in rows] == [
            (m.version, m.name, m.checksum) for m in migrations.discover()
        ]
        ext = conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert ext == ("vector",)


def test_second_run_applies_nothing(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrations.migrate(conn)
        assert migrations.migrate(conn) == []
        assert all(state == "applied" for _, _, state in migrations.status_rows(conn))


def test_concurrent_migrates_apply_each_file_once(empty_db_url: str) -> None:
    errors: list[BaseException] = []
    results: list[int] = []

    def run() -> None:
        try:
            with psycopg.connect(empty_db_url, autocommit=True) as conn:
                results.append(len(migrations.migrate(conn)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [0, 0, len(migrations.discover())]


def _copy_sql(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(migrations.sql_dir(), target)
    return target


def test_tampered_migration_is_refused_and_nothing_applied(
    empty_db_url: str, tmp_path: Path
) -> None:
    folder = _copy_sql(tmp_path)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrations.migrate(conn, migrations.discover(folder))
        first = sorted(folder.glob("0001_*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        (folder / "0999_extra.sql").write_text("CREATE TABLE extra_table (id int);")
        with pytest.raises(MigrationError, match=r"changed since they were applied: 0001_"):
            migrations.migrate(conn, migrations.discover(folder))
        assert conn.execute("SELECT to_regclass('extra_table')").fetchone() == (None,)
        states = {m.version: s for m, _, s in migrations.status_rows(conn, migrations.discover(folder))}
        assert states[1] == "CHANGED"
        assert states[999] == "pending"


def test_failing_migration_rolls_back_its_own_changes(empty_db_url: str, tmp_path: Path) -> None:
    folder = _copy_sql(tmp_path)
    (folder / "0998_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();"
    )
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=r"0998_broken\.sql failed and was rolled back"):
            migrations.migrate(conn, migrations.discover(folder))
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
        assert 998 not in migrations.applied(conn)
        assert 1 in migrations.applied(conn)


def test_check_schema_says_run_migrate_when_behind(empty_db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        with pytest.raises(SchemaBehind, match="run `ingestor migrate`"):
            migrations.check_schema(conn)
        migrations.migrate(conn)
        assert migrations.check_schema(conn) == migrations.required_version()
        with pytest.raises(SchemaBehind, match="needs 9999"):
            migrations.check_schema(conn, needed=9999)


def test_duplicate_versions_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share version 1"):
        migrations.discover(tmp_path)
