"""Settings: variable names users know, every problem listed at once, secrets masked."""

from __future__ import annotations

import pytest

from ingestor.config import ConfigError, RestSettings, load_settings
from ingestor.contract import ROLES, SECRET_VARIABLES, role_contract


def test_all_problems_are_listed_by_variable_name() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            "ws",
            {"WS_SHARD_COUNT": "2", "WS_SHARD_ID": "5", "KALSHI_HOST": "ftp://x", "WS_BATCH_SIZE": "zero"},
        )
    text = str(info.value)
    assert "WS_SHARD_ID: must be below WS_SHARD_COUNT=2" in text
    assert "KALSHI_HOST: must start with http:// or https://" in text
    assert "WS_BATCH_SIZE:" in text
    assert len(info.value.problems) == 3
    assert info.value.exit_code == 2


def test_portal_requires_password_and_secret_and_never_echoes_them() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings("portal", {"WEB_PORTAL_PASSWORD": "short1"})
    text = str(info.value)
    assert "WEB_PORTAL_PASSWORD: must be at least 8 characters" in text
    assert "WEB_PORTAL_SECRET_KEY: is required but not set" in text
    assert "short1" not in text


def test_lists_and_aliases_are_normalised() -> None:
    s = load_settings(
        "rest",
        {
            "STRIKE_PERIODS": "hourly, Daily",
            "DISCOVERY_EVENT_STATUSES": "active",
            "CANDLE_PERIODS": "1440,1,1",
        },
    )
    assert isinstance(s, RestSettings)
    assert s.strike_periods == ["hour", "day"]
    assert s.discovery_event_statuses == ["open"]
    assert s.candle_periods == [1, 1440]


def test_bad_candle_period_is_named() -> None:
    with pytest.raises(ConfigError, match=r"CANDLE_PERIODS: periods must be among 1,60,1440"):
        load_settings("worker", {"CANDLE_PERIODS": "5"})


def test_key_id_and_key_path_go_together() -> None:
    with pytest.raises(ConfigError, match="must be set together"):
        load_settings("ws", {"KALSHI_API_KEY_ID": "abc"})


def test_masked_hides_database_password_and_secrets() -> None:
    s = load_settings(
        "portal",
        {
            "DATABASE_URL": "postgresql://kalshi_portal_user:hunter22@db:5432/kalshi",
            "WEB_PORTAL_PASSWORD": "correct horse",
            "WEB_PORTAL_SECRET_KEY": "s" * 40,
        },
    )
    shown = s.masked()
    assert shown["DATABASE_URL"] == "postgresql://kalshi_portal_user:***@db:5432/kalshi"
    assert shown["WEB_PORTAL_PASSWORD"] == "********"
    assert "hunter22" not in repr(shown) and "correct horse" not in repr(shown)


def test_env_allowlists_scope_secrets() -> None:
    for var, owners in SECRET_VARIABLES.items():
        for role in ROLES:
            allowed = var in role_contract(role).env_allowlist()
            if allowed:
                assert role in owners, f"{var} would reach {role}"
    assert "KALSHI_PRIVATE_KEY_PEM_PATH" in role_contract("ws").env_allowlist()
    assert "WEB_PORTAL_PASSWORD" in role_contract("portal").env_allowlist()
    assert "AZURE_OPENAI_API_KEY" in role_contract("rag").env_allowlist()


def _read_env_file(path: str) -> dict[str, str]:
    out = {}
    with open(path) as handle:
        text = handle.read()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


@pytest.mark.parametrize("role", [*ROLES, "admin"])
def test_example_env_files_are_valid_settings(role: str) -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "conf" / f"{role}.env.example"
    env = _read_env_file(str(path))
    settings = load_settings(role, env)
    declared = set(type(settings).env_names())
    per_role_urls = {f"DATABASE_URL_{r.upper()}" for r in ROLES}
    unknown = set(env) - declared - (per_role_urls if role == "admin" else set())
    assert unknown == set(), f"{path.name} sets variables the {role} settings do not read"
