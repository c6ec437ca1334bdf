"""The command line on bad input: one clear message, no traceback, the right exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ingestor.db import migrations


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    base["PYTHONUNBUFFERED"] = "1"
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ingestor", *args],
        env=base, capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_unreachable_database_is_one_masked_line() -> None:
    out = run_cli(
        "migrate",
        env={"DATABASE_URL": "postgresql://admin:s3cr3t-pw@127.0.0.1:1/kalshi?connect_timeout=2"},
    )
    assert out.returncode == 1
    assert "s3cr3t-pw" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("ingestor migrate: cannot connect to postgresql://admin:***@127.0.0.1:1/kalshi")


def test_invalid_settings_exit_2_listing_every_variable() -> None:
    out = run_cli("config", "ws", env={"WS_SHARD_COUNT": "0", "KALSHI_HOST": "nope", "LOG_LEVEL": "LOUD"})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    for name in ("WS_SHARD_COUNT", "KALSHI_HOST", "LOG_LEVEL"):
        assert f"  {name}:" in out.stderr


def test_config_prints_effective_settings_with_secrets_masked() -> None:
    out = run_cli(
        "config", "portal",
        env={
            "WEB_PORTAL_PASSWORD": "a-long-password",
            "WEB_PORTAL_SECRET_KEY": "k" * 48,
            "DATABASE_URL": "postgresql://u:dbpass@h/d",
        },
    )
    assert out.returncode == 0, out.stderr
    assert "a-long-password" not in out.stdout and "dbpass" not in out.stdout
    assert "WEB_PORTAL_PASSWORD" in out.stdout and "postgresql://u:***@h/d" in out.stdout


def _machine_pg15() -> str | None:
    url = os.environ.get("NO_VECTOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
            return url if row and row[0] == 0 else None
    except psycopg.Error:
        return None


def test_migrate_names_the_missing_vector_extension() -> None:
    url = _machine_pg15()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs a PostgreSQL without pgvector at 127.0.0.1:5432")
        pytest.skip("no PostgreSQL without pgvector on 127.0.0.1:5432")
    dbname = f"novector_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        target = url.rsplit("/", 1)[0] + f"/{dbname}"
        out = run_cli("migrate", env={"DATABASE_URL": target})
        assert out.returncode == 1
        assert "lacks the pgvector extension 'vector'" in out.stderr
        assert "Traceback" not in out.stderr
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT to_regclass('events')").fetchone() == (None,)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def test_migrate_status_and_idempotent_run(empty_db_url: str) -> None:
    out = run_cli("migrate", "--status", env={"DATABASE_URL": empty_db_url})
    assert out.returncode == 0, out.stderr
    assert f"0 applied, {len(migrations.discover())} pending" in out.stdout
    out = run_cli("migrate", "--roles", env={"DATABASE_URL": empty_db_url})
    assert out.returncode == 0, out.stderr
    assert "applied 0001_core.sql" in out.stdout and "roles and grants applied" in out.stdout
    again = run_cli("migrate", env={"DATABASE_URL": empty_db_url})
    assert again.returncode == 0
    assert "nothing to apply" in again.stdout
    status = run_cli("migrate", "--status", env={"DATABASE_URL": empty_db_url})
    assert f"{len(migrations.discover())} applied, 0 pending, 0 changed" in status.stdout


def test_tampered_file_is_refused_from_the_command_line(empty_db_url: str, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "sql"
    shutil.copytree(migrations.sql_dir(), folder)
    env = {"DATABASE_URL": empty_db_url, "INGESTOR_SQL_DIR": str(folder)}
    assert run_cli("migrate", env=env).returncode == 0
    target = folder / "0001_core.sql"
    target.write_text(target.read_text().replace("Core schema", "Core  schema"))
    out = run_cli("migrate", env=env)
    assert out.returncode == 1
    assert "0001_core.sql" in out.stderr and "nothing was applied" in out.stderr


def test_role_refuses_to_start_when_schema_is_behind(empty_db_url: str) -> None:
    out = run_cli("role", "rest", env={"DATABASE_URL": empty_db_url})
    if "not available in this installation" in out.stderr:
        pytest.skip("the rest role is not part of this installation yet")
    assert out.returncode == 75  # not ready: the supervisor retries without counting to FATAL
    assert "run `ingestor migrate`" in out.stderr


@pytest.mark.parametrize("command", [["status"], ["health", "rest"], ["maintain"]])
def test_commands_on_an_unmigrated_database_say_run_migrate(
    command: list[str], empty_db_url: str
) -> None:
    out = run_cli(*command, env={"DATABASE_URL": empty_db_url})
    assert out.returncode == 1
    assert "run `ingestor migrate`" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
