"""ingest_state API: one format, the writer recorded, guardrails and ownership enforced."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestor.db import ingest_state
from ingestor.errors import GuardrailViolation
from ingestor.guardrails import Guardrails

aware = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(aware)
def test_format_and_parse_round_trip(when: datetime) -> None:
    text = ingest_state.format_ts(when)
    assert text.endswith("Z")
    assert ingest_state.parse_ts(text) == when


def test_format_converts_offsets_to_utc() -> None:
    est = timezone(timedelta(hours=-5))
    assert ingest_state.format_ts(datetime(2026, 1, 1, 7, 0, tzinfo=est)) == (
        "2026-01-01T12:00:00.000000Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        ingest_state.format_ts(datetime(2026, 1, 1))


def test_parse_accepts_epoch_seconds_from_older_tools() -> None:
    assert ingest_state.parse_ts("1700000000") == datetime.fromtimestamp(1700000000, UTC)


def test_write_records_writer_and_read_returns_datetime(role_url: Callable[[str], str]) -> None:
    when = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
    off = Guardrails(enabled=False, role=None)
    with psycopg.connect(role_url("rest")) as conn:
        ingest_state.write(conn, "last_discovery_ts", when, "rest", off)
        ingest_state.write(conn, "last_min_close_ts", when, "rest", off)
    with psycopg.connect(role_url("worker")) as conn:
        later = when + timedelta(hours=1)
        ingest_state.write(conn, "last_min_close_ts", later, "worker", off)
        entry = ingest_state.read(conn, "last_min_close_ts")
        assert entry is not None
        assert entry.value == later
        assert entry.updated_by == "worker"
        assert entry.raw_value == "2026-11-25T13:00:00.123456Z"
        everything = ingest_state.read_all(conn)
        assert set(everything) == {"last_discovery_ts", "last_min_close_ts"}
        assert everything["last_discovery_ts"].updated_by == "rest"


def test_write_refuses_keys_the_role_does_not_own(db_url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn:
        with pytest.raises(ValueError, match="does not own ingest_state key 'last_tick_ts'"):
            ingest_state.write(conn, "last_tick_ts", now, "rest", Guardrails(False, None))
        with pytest.raises(ValueError, match="unknown ingest_state key"):
            ingest_state.write(conn, "made_up_key", now, "rest", Guardrails(False, None))


def test_guardrails_name_role_object_and_owner(db_url: str) -> None:
    with psycopg.connect(db_url) as conn, pytest.raises(GuardrailViolation) as info:
        ingest_state.write(
            conn, "last_discovery_ts", datetime.now(UTC), "rest", Guardrails(True, "ws")
        )
    message = str(info.value)
    assert "role ws" in message
    assert "'last_discovery_ts'" in message
    assert "owner: rest" in message


def test_guardrails_role_from_env() -> None:
    g = Guardrails.from_env({"SERVICE_GUARDRAILS": "1", "KALSHI_RUN_MODE": "worker"})
    assert g == Guardrails(True, "worker")
    g = Guardrails.from_env({"SERVICE_GUARDRAILS": "1", "SERVICE_ROLE": "rag", "KALSHI_RUN_MODE": "ws"})
    assert g.role == "rag"
    assert Guardrails.from_env({"KALSHI_RUN_MODE": "all"}) == Guardrails(False, None)


def test_guardrails_queue_operations() -> None:
    Guardrails(True, "rest").check_queue("enqueue")
    Guardrails(True, "portal").check_queue("enqueue")
    Guardrails(True, "worker").check_queue("claim")
    with pytest.raises(GuardrailViolation, match=r"role rest may not claim on work_queue; owner: worker"):
        Guardrails(True, "rest").check_queue("claim")
    with pytest.raises(GuardrailViolation, match="role ws may not enqueue"):
        Guardrails(True, "ws").check_queue("enqueue")
    Guardrails(False, "ws").check_queue("enqueue")


def test_entrypoint_refuses_another_role() -> None:
    Guardrails(True, "rest").check_entrypoint("rest")
    Guardrails(True, None).check_entrypoint("rest")
    with pytest.raises(GuardrailViolation, match="rest entrypoint was started with role ws"):
        Guardrails(True, "ws").check_entrypoint("rest")


def test_cursor_keys_age_from_their_last_write_not_their_value() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    week_ago = now - timedelta(days=7)
    cursor = ingest_state.StateEntry(
        "last_min_close_ts", week_ago, ingest_state.format_ts(week_ago), now - timedelta(seconds=5), "rest"
    )
    assert cursor.age_seconds(now) == 5
    tick = ingest_state.StateEntry(
        "last_tick_ts", week_ago, ingest_state.format_ts(week_ago), now - timedelta(seconds=5), "ws"
    )
    assert tick.age_seconds(now) == 7 * 86400
