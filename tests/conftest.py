"""Shared fixtures: a real PostgreSQL 16 with pgvector for the whole test session.

TEST_DATABASE_URL (an admin URL on a server with pgvector) is used when set; otherwise an
embedded server from `pgserver` starts in a temporary directory. The schema is migrated once
into a template database; each test gets a fresh copy (CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ingestor import contract
from ingestor.db import grants, migrations, partitions
from ingestor.db.embedded import start_embedded, stop_embedded, with_database, with_user

TEMPLATE_DB = "ingestor_test_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """Admin URL of the test server (the `postgres` database)."""
    env = os.environ.get("TEST_DATABASE_URL")
    if env:
        yield env
        return
    datadir = Path(tempfile.mkdtemp(prefix="ingestor-test-pg-"))
    os.chmod(datadir, 0o755)  # noqa: S103 - as root the server runs as user pgserver
    url = start_embedded(datadir / "pg", cleanup="stop")
    yield url
    stop_embedded(datadir / "pg")
    shutil.rmtree(datadir, ignore_errors=True)


def role_password(role: str) -> str:
    """Test-only password of a role's login user (ignored by the embedded server's trust auth)."""
    return f"test-{role}-pw"


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _drop(admin_url: str, name: str) -> None:
    with _admin(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> str:
    """A database with every migration, partitions ahead and the contract's grants applied."""
    _drop(pg_admin_url, TEMPLATE_DB)
    with _admin(pg_admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    url = with_database(pg_admin_url, TEMPLATE_DB)
    with _admin(url) as conn:
        migrations.migrate(conn)
        partitions.ensure_ahead(conn, 3)
        grants.apply_roles(conn)
        for role in contract.ROLES:
            grants.ensure_login_user(conn, role, password=role_password(role))
    return TEMPLATE_DB


def _new_db(admin_url: str, template: str | None) -> str:
    name = f"t_{os.getpid()}_{next(_counter)}"
    with _admin(admin_url) as conn:
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    return name


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """Admin URL of a fresh, fully migrated database for this test."""
    name = _new_db(pg_admin_url, template_db)
    yield with_database(pg_admin_url, name)
    _drop(pg_admin_url, name)


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """Admin URL of a fresh database with nothing in it (for migration tests)."""
    name = _new_db(pg_admin_url, None)
    yield with_database(pg_admin_url, name)
    _drop(pg_admin_url, name)


@pytest.fixture
def role_url(db_url: str) -> Callable[[str], str]:
    """URL of this test's database logged in as a role's login user."""

    def make(role: str) -> str:
        return with_user(db_url, contract.db_login_user(role), role_password(role))

    return make


@pytest.fixture
def ingestor_home(tmp_path: Path) -> Iterator[Path]:
    """A fresh INGESTOR_HOME; its embedded server (if a test started one) is stopped after."""
    tmp_path.chmod(0o755)
    yield tmp_path
    stop_embedded(tmp_path / "pg")
