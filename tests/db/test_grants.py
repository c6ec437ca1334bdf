"""Database roles against a real PostgreSQL: each role's login can do exactly what the contract says."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest

from ingestor import contract
from ingestor.db import grants

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")

# A column each probe can name; INSERT ... SELECT ... WHERE false checks the privilege
# without needing a valid row.
PROBE_COLUMN = {
    "events": "event_ticker", "markets": "ticker", "active_markets": "ticker",
    "market_candles": "ticker", "market_ticks": "ticker", "lifecycle_events": "msg_type",
    "work_queue": "job_type", "prediction_runs": "agent", "market_predictions": "ticker",
    "rag_documents": "source_id", "ingest_state": "key", "schema_version": "name",
    "ws_gaps": "reason", "market_quotes_latest": "ticker", "backfill_runs": "status",
}


def _probe(table: str, privilege: str) -> str:
    col = PROBE_COLUMN[table]
    return {
        "SELECT": f"SELECT count(*) FROM {table}",
        "INSERT": f"INSERT INTO {table} ({col}) SELECT NULL WHERE false",
        "UPDATE": f"UPDATE {table} SET {col} = {col} WHERE false",
        "DELETE": f"DELETE FROM {table} WHERE false",
    }[privilege]


def test_committed_roles_sql_is_generated_from_the_contract() -> None:
    assert grants.roles_sql_path().read_text() == grants.render_roles_sql(), (
        "sql/roles.sql is stale: run `ingestor migrate --print-roles > sql/roles.sql`"
    )


def test_database_grants_equal_the_contract(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee LIKE 'kalshi\\_%%' AND table_schema = 'public'"
        ).fetchall()
    actual: dict[str, dict[str, set[str]]] = {}
    for grantee, table, priv in rows:
        actual.setdefault(grantee, {}).setdefault(table, set()).add(priv)
    expected = {
        contract.db_group_role(role): {t: set(p) for t, p in tables.items()}
        for role, tables in contract.TABLE_PRIVILEGES.items()
    }
    assert actual == expected


@pytest.mark.parametrize("role", contract.ROLES)
def test_role_can_do_exactly_its_contract(role: str, role_url: Callable[[str], str]) -> None:
    allowed = contract.TABLE_PRIVILEGES[role]
    mismatches = []
    with psycopg.connect(role_url(role), autocommit=True) as conn:
        for table in contract.TABLES:
            for privilege in PRIVILEGES:
                want = privilege in allowed.get(table, frozenset())
                try:
                    conn.execute(_probe(table, privilege))
                    got = True
                except psycopg.errors.InsufficientPrivilege:
                    got = False
                if got != want:
                    mismatches.append((table, privilege, "allowed" if got else "denied"))
    assert mismatches == []


@pytest.mark.parametrize("role", contract.ROLES)
def test_ingest_state_rows_are_writable_only_by_their_owners(
    role: str, role_url: Callable[[str], str]
) -> None:
    now = datetime.now(UTC).isoformat()
    outcome = {}
    with psycopg.connect(role_url(role), autocommit=True) as conn:
        for key in contract.STATE_KEYS:
            try:
                conn.execute(
                    "INSERT INTO ingest_state (key, value, updated_by) VALUES (%s, %s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (key, now, role),
                )
                outcome[key] = True
            except psycopg.errors.InsufficientPrivilege:
                outcome[key] = False
    assert outcome == {k: role in owners for k, owners in contract.STATE_KEYS.items()}


def test_owners_really_write_their_tables(role_url: Callable[[str], str]) -> None:
    with psycopg.connect(role_url("rest")) as conn:
        conn.execute("INSERT INTO events (event_ticker, title) VALUES ('EV-1', 'e')")
        conn.execute("INSERT INTO markets (ticker, event_ticker) VALUES ('MK-1', 'EV-1')")
        conn.execute(
            "INSERT INTO active_markets (ticker, event_ticker, status) VALUES ('MK-1', 'EV-1', 'active')"
        )
        conn.execute(
            "INSERT INTO market_candles (ticker, period_minutes, end_period_ts, price_close) "
            "VALUES ('MK-1', 60, now(), 0.5)"
        )
        conn.execute(
            "INSERT INTO work_queue (job_type, dedupe_key, payload) VALUES ('backfill_market', 'MK-1', '{}')"
        )
        assert conn.execute("SELECT ingestor_ensure_partitions(3)").fetchone() is not None
    with psycopg.connect(role_url("ws")) as conn:
        conn.execute(
            "INSERT INTO market_ticks (ticker, ts, fingerprint, received_at, price_dollars) "
            "VALUES ('MK-1', now(), 1, now(), 0.51)"
        )
        conn.execute(
            "INSERT INTO lifecycle_events (msg_type, event_type, market_ticker, ts, fingerprint, raw) "
            "VALUES ('market_lifecycle_v2', 'created', 'MK-1', now(), 'f1', '{}')"
        )
        assert conn.execute("SELECT ticker FROM active_markets").fetchall() == [("MK-1",)]
    with psycopg.connect(role_url("worker")) as conn:
        conn.execute("UPDATE work_queue SET status = 'running' WHERE dedupe_key = 'MK-1'")
        conn.execute(
            "INSERT INTO market_candles (ticker, period_minutes, end_period_ts, price_close) "
            "VALUES ('MK-1', 1, now(), 0.5)"
        )
    with psycopg.connect(role_url("rag")) as conn:
        run_id = conn.execute(
            "INSERT INTO prediction_runs (agent) VALUES ('baseline') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO market_predictions (run_id, ticker, predicted_yes_prob) VALUES (%s, 'MK-1', 0.4)",
            (run_id,),
        )
        conn.execute(
            "INSERT INTO rag_documents (source, source_id, content, content_sha256) "
            "VALUES ('market', 'MK-1', 'text', 'abc')"
        )
    with psycopg.connect(role_url("portal")) as conn:
        conn.execute("INSERT INTO work_queue (job_type, payload) VALUES ('backfill_market', '{}')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE work_queue SET status = 'done'")


def test_rest_cannot_call_partition_function_as_portal(role_url: Callable[[str], str]) -> None:
    with psycopg.connect(role_url("portal")) as conn, pytest.raises(
        psycopg.errors.InsufficientPrivilege
    ):
        conn.execute("SELECT ingestor_ensure_partitions(3)")


def test_apply_roles_is_idempotent(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        grants.apply_roles(conn)
        grants.apply_roles(conn)
        assert grants.roles_exist(conn)
