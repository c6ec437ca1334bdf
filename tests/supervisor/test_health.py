"""`ingestor health`: thresholds from role intervals, verdicts, exit codes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingestor import contract
from ingestor.config import load_settings
from ingestor.db.ingest_state import StateEntry, format_ts
from ingestor.errors import ConfigurationError
from ingestor.supervisor import health
from ingestor.supervisor.health import (
    KeyFreshness,
    RoleHealth,
    check_roles,
    freshness_thresholds,
    judge_freshness,
    parse_max_age,
)
from ingestor.supervisor.status_file import State, StatusBoard

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def entry(key: str, age: float, *, written_age: float | None = None) -> StateEntry:
    value = NOW - timedelta(seconds=age)
    updated = NOW - timedelta(seconds=age if written_age is None else written_age)
    return StateEntry(key, value, format_ts(value), updated, contract.STATE_KEYS[key][0])


def test_rest_thresholds_follow_its_intervals() -> None:
    s = load_settings("rest", {"DISCOVERY_SECONDS": "1800", "BACKFILL_SECONDS": "900"})
    assert freshness_thresholds("rest", s) == {
        "last_discovery_ts": 3600,
        "last_min_close_ts": 1800,
    }
    fast = load_settings("rest", {"DISCOVERY_SECONDS": "10", "BACKFILL_SECONDS": "10"})
    assert freshness_thresholds("rest", fast) == {
        "last_discovery_ts": 120,
        "last_min_close_ts": 300,
    }


def test_ws_worker_rag_portal_thresholds() -> None:
    ws = load_settings("ws", {"WS_SUB_REFRESH_SECONDS": "60"})
    assert freshness_thresholds("ws", ws) == {"last_ws_tick_ts": 180, "last_tick_ts": 180}
    assert freshness_thresholds("ws", load_settings("ws", {"WS_SUB_REFRESH_SECONDS": "5"})) == {
        "last_ws_tick_ts": 120,
        "last_tick_ts": 120,
    }
    worker = load_settings("worker", {"WORK_QUEUE_POLL_SECONDS": "30"})
    assert freshness_thresholds("worker", worker) == {"last_worker_ts": 90}
    assert freshness_thresholds("worker", load_settings("worker", {})) == {"last_worker_ts": 60}
    rag = load_settings("rag", {"PREDICTION_ENABLE": "1", "PREDICTION_POLL_SECONDS": "600"})
    assert freshness_thresholds("rag", rag) == {"last_prediction_ts": 1800}
    rag_fast = load_settings("rag", {"PREDICTION_ENABLE": "1", "PREDICTION_POLL_SECONDS": "60"})
    assert freshness_thresholds("rag", rag_fast) == {"last_prediction_ts": 300}
    assert freshness_thresholds("rag", load_settings("rag", {})) == {}  # predictions off
    portal = contract.role_contract("portal").settings.model_construct()
    assert freshness_thresholds("portal", portal) == {}


def test_thresholds_cover_exactly_the_keys_each_role_owns_of_record() -> None:
    env = {
        "PREDICTION_ENABLE": "1",
        "WEB_PORTAL_PASSWORD": "password-123",
        "WEB_PORTAL_SECRET_KEY": "s" * 40,
    }
    for role in contract.ROLES:
        owned = {k for k, owners in contract.STATE_KEYS.items() if owners[0] == role}
        keys = set(freshness_thresholds(role, load_settings(role, env)))
        assert keys == owned, role
        assert keys <= set(contract.role_contract(role).state_keys)


def test_thresholds_reject_another_roles_settings() -> None:
    with pytest.raises(TypeError, match="RestSettings"):
        freshness_thresholds("rest", load_settings("ws", {}))
    with pytest.raises(ValueError, match="unknown role"):
        freshness_thresholds("nope", load_settings("ws", {}))


def test_judge_fresh_stale_missing_and_unreadable() -> None:
    unreadable = StateEntry("last_tick_ts", None, "garbage", NOW, "ws")
    result = judge_freshness(
        {
            "last_ws_tick_ts": 120,
            "last_tick_ts": 120,
            "last_discovery_ts": 100,
            "last_worker_ts": 60,
        },
        {
            "last_ws_tick_ts": entry("last_ws_tick_ts", 30),
            "last_tick_ts": unreadable,
            "last_worker_ts": entry("last_worker_ts", 61),
        },
        NOW,
    )
    verdicts = {k.key: k.verdict for k in result}
    assert verdicts == {
        "last_ws_tick_ts": "fresh",
        "last_tick_ts": "unreadable",
        "last_discovery_ts": "missing",
        "last_worker_ts": "stale",
    }
    assert [k.fresh for k in result] == [True, False, False, False]


def test_cursor_key_ages_from_its_last_write() -> None:
    # The backfill cursor's value is a position (may be days old); its freshness is the write.
    cursor = entry("last_min_close_ts", age=86400 * 3, written_age=10)
    (verdict,) = judge_freshness({"last_min_close_ts": 300}, {"last_min_close_ts": cursor}, NOW)
    assert verdict.fresh


def test_future_timestamps_count_as_fresh() -> None:
    (verdict,) = judge_freshness(
        {"last_tick_ts": 10}, {"last_tick_ts": entry("last_tick_ts", -50)}, NOW
    )
    assert verdict.age_seconds == 0 and verdict.fresh


@pytest.mark.parametrize(
    ("state", "healthy"),
    [("RUNNING", True), ("BACKOFF", True), ("FATAL", False), ("EXITED", False)],
)
def test_process_state_enters_the_verdict(state: str, healthy: bool) -> None:
    fresh = (KeyFreshness("last_worker_ts", 60, 1.0),)
    assert RoleHealth("worker", fresh, state).healthy is healthy


def test_parse_max_age() -> None:
    assert parse_max_age(["last_tick_ts=60", "last_worker_ts = 5s"]) == {
        "last_tick_ts": 60,
        "last_worker_ts": 5,
    }
    with pytest.raises(ConfigurationError, match="KEY=SECONDS"):
        parse_max_age(["last_tick_ts"])
    with pytest.raises(ConfigurationError, match="unknown ingest_state key"):
        parse_max_age(["nope=5"])


def reader(entries: dict[str, StateEntry]) -> health.StateReader:
    def read(role: str, env: Mapping[str, str]) -> dict[str, StateEntry]:
        return entries

    return read


def test_check_roles_uses_overrides_and_the_roles_own_settings() -> None:
    entries = {"last_discovery_ts": entry("last_discovery_ts", 200)}
    source = {"DISCOVERY_SECONDS": "50", "DISCOVERY_SECONDS_REST": "1000"}
    (rest,) = check_roles(["rest"], source, {}, reader(entries), None, NOW)
    assert {k.key: k.max_age_seconds for k in rest.keys}["last_discovery_ts"] == 2000
    (rest,) = check_roles(["rest"], source, {"last_discovery_ts": 100}, reader(entries), None, NOW)
    assert not {k.key: k.fresh for k in rest.keys}["last_discovery_ts"]


def test_check_roles_reads_as_the_roles_own_database_user() -> None:
    seen: dict[str, str | None] = {}

    def read(role: str, env: Mapping[str, str]) -> dict[str, StateEntry]:
        seen[role] = env.get("DATABASE_URL")
        return {}

    source = {"DATABASE_URL": "postgresql://admin@db/x", "DATABASE_URL_WS": "postgresql://ws@db/x"}
    check_roles(["ws", "worker"], source, {}, read, None, NOW)
    assert seen == {"ws": "postgresql://ws@db/x", "worker": "postgresql://admin@db/x"}


def test_override_for_an_unchecked_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="last_tick_ts"):
        check_roles(["rest"], {}, {"last_tick_ts": 5}, reader({}), None, NOW)


def test_unreadable_database_and_bad_settings_are_unhealthy_not_crashes() -> None:
    def broken(role: str, env: Mapping[str, str]) -> dict[str, StateEntry]:
        raise OSError("connection refused")

    (ws,) = check_roles(["ws"], {}, {}, broken, None, NOW)
    assert not ws.healthy and ws.error is not None and "connection refused" in ws.error
    (ws,) = check_roles(["ws"], {"WS_SHARD_COUNT": "0"}, {}, reader({}), None, NOW)
    assert not ws.healthy and ws.error is not None and "WS_SHARD_COUNT" in ws.error


def test_live_supervisor_status_marks_fatal_roles_unhealthy() -> None:
    status = {"stale": False, "roles": {"worker": {"state": "FATAL"}}}
    entries = {"last_worker_ts": entry("last_worker_ts", 1)}
    (worker,) = check_roles(["worker"], {}, {}, reader(entries), status, NOW)
    assert worker.process_state == "FATAL" and not worker.healthy
    stale = {"stale": True, "roles": {"worker": {"state": "FATAL"}}}
    (worker,) = check_roles(["worker"], {}, {}, reader(entries), stale, NOW)
    assert worker.process_state is None and worker.healthy


def run_main(tmp_path: Path, entries: dict[str, StateEntry], *argv: str) -> int:
    parser = argparse.ArgumentParser()
    health.add_arguments(parser)
    args = parser.parse_args([*argv, "--status-file", str(tmp_path / "none.json")])

    def read(role: str, env: Mapping[str, str]) -> dict[str, StateEntry]:
        # Judged against the real clock in main(): shift the fixture to now.
        shift = datetime.now(UTC) - NOW
        return {
            k: StateEntry(
                e.key,
                e.value + shift if e.value else None,
                e.raw_value,
                e.updated_at + shift,
                e.updated_by,
            )
            for k, e in entries.items()
        }

    return health.main(args, read_state=read)


def test_main_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fresh = {"last_worker_ts": entry("last_worker_ts", 5)}
    assert run_main(tmp_path, fresh, "worker", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["healthy"] is True
    assert out["roles"][0]["keys"][0]["key"] == "last_worker_ts"
    assert run_main(tmp_path, fresh, "worker", "--max-age", "last_worker_ts=1") == 1
    assert "STALE" in capsys.readouterr().err
    assert run_main(tmp_path, {}, "worker") == 1
    assert "never written" in capsys.readouterr().err


def test_all_means_the_running_supervisors_roles(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    board = StatusBoard(path, ["ws"])
    board.update("ws", state=State.RUNNING)
    from ingestor.supervisor.status_file import read_status

    assert health.resolve_roles("all", read_status(path)) == ["ws"]
    with pytest.raises(ConfigurationError, match="unknown role"):
        health.resolve_roles("rest,bogus", None)
    assert health.resolve_roles("rest,ws", None) == ["rest", "ws"]
