"""No DATABASE_URL: the embedded PostgreSQL is started in INGESTOR_HOME, reused, and isolated."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from ingestor import contract
from ingestor.db.embedded import start_embedded, with_user
from tests.cli.test_cli_errors import run_cli


@pytest.fixture
def home(ingestor_home: Path) -> Path:
    return ingestor_home


def test_embedded_server_is_started_reused_and_has_role_users(home: Path) -> None:
    env = {"INGESTOR_HOME": str(home)}
    first = run_cli("migrate", env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"using the embedded PostgreSQL in {home / 'pg'}" in first.stdout
    assert "applied 0001_core.sql" in first.stdout
    for role in contract.ROLES:
        assert f"login user for {role}: {contract.db_login_user(role)}" in first.stdout
    assert (home / "pg" / "PG_VERSION").exists()

    second = run_cli("migrate", env=env, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stdout

    status = run_cli("status", env=env, timeout=120)
    assert status.returncode == 0, status.stderr
    for key in contract.STATE_KEYS:
        assert key in status.stdout
    assert "missing" in status.stdout

    admin = start_embedded(home / "pg")
    url = with_user(admin, contract.db_login_user("ws"))
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO events (event_ticker) VALUES ('X')")


def test_stop_embedded_stops_a_running_server(home: Path) -> None:
    from ingestor.db.embedded import stop_embedded

    url = start_embedded(home / "pg")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert stop_embedded(home / "pg") is True
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    assert stop_embedded(home / "pg") is False
