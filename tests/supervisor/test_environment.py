"""Building each child's environment from scratch, env files, and the secrets to mask."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestor import contract
from ingestor.supervisor.environment import (
    EnvFileError,
    build_child_env,
    parse_env_file,
    secret_values,
    supervisor_environment,
    url_password,
)

SOURCE = {
    "PATH": "/usr/bin",
    "HOME": "/home/app",
    "LANG": "C.UTF-8",
    "PYTHONPATH": "/app",
    "LC_ALL": "C.UTF-8",
    "DATABASE_URL": "postgresql://shared:sharedpw@db/kalshi",
    "DATABASE_URL_REST": "postgresql://kalshi_rest_user:restpw@db/kalshi",
    "DATABASE_URL_WS": "postgresql://kalshi_ws_user:wspw@db/kalshi",
    "KALSHI_API_KEY_ID": "key-id-123",
    "KALSHI_PRIVATE_KEY_PEM_PATH": "/secrets/kalshi.pem",
    "OPENAI_API_KEY": "sk-openai",
    "AZURE_OPENAI_API_KEY": "azure-key",
    "WEB_PORTAL_PASSWORD": "portal-password",
    "WEB_PORTAL_SECRET_KEY": "x" * 40,
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "DISCOVERY_SECONDS": "60",
    "KALSHI_RUN_MODE": "all",
}


def env_for(role: str, source: dict[str, str] | None = None) -> dict[str, str]:
    return build_child_env(role, SOURCE if source is None else source).env


@pytest.mark.parametrize("role", contract.ROLES)
def test_child_env_holds_only_basics_and_the_role_allowlist(role: str) -> None:
    env = env_for(role)
    allowed = set(contract.role_contract(role).env_allowlist())
    extra = {"SERVICE_ROLE", "KALSHI_RUN_MODE", "PYTHONUNBUFFERED"}
    for name in env:
        assert (
            name in allowed
            or name in extra
            or name in contract.BASE_ENV_NAMES
            or name.startswith(contract.BASE_ENV_PREFIXES)
        ), name
    assert env["SERVICE_ROLE"] == role
    assert env["KALSHI_RUN_MODE"] == role
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"] == "/usr/bin" and env["PYTHONPATH"] == "/app" and env["LC_ALL"] == "C.UTF-8"


@pytest.mark.parametrize("secret", sorted(contract.SECRET_VARIABLES))
def test_secrets_reach_exactly_the_roles_the_contract_names(secret: str) -> None:
    source = {**SOURCE, secret: "the-secret-value"}
    reached = {role for role in contract.ROLES if secret in env_for(role, source)}
    assert reached == set(contract.SECRET_VARIABLES[secret])


def test_unrelated_variables_reach_nobody() -> None:
    for role in contract.ROLES:
        assert "AWS_SECRET_ACCESS_KEY" not in env_for(role)


def test_database_url_of_the_role_becomes_its_database_url() -> None:
    assert env_for("rest")["DATABASE_URL"] == SOURCE["DATABASE_URL_REST"]
    assert env_for("ws")["DATABASE_URL"] == SOURCE["DATABASE_URL_WS"]
    for role in contract.ROLES:
        assert not any(k.startswith("DATABASE_URL_") for k in env_for(role))


def test_missing_role_database_url_falls_back_with_a_warning_naming_the_role() -> None:
    child = build_child_env("worker", SOURCE)
    assert child.env["DATABASE_URL"] == SOURCE["DATABASE_URL"]
    assert len(child.warnings) == 1
    assert "worker" in child.warnings[0] and "DATABASE_URL_WORKER" in child.warnings[0]
    assert build_child_env("rest", SOURCE).warnings == ()


def test_no_database_url_at_all_leaves_it_unset_for_the_embedded_default() -> None:
    source = {k: v for k, v in SOURCE.items() if not k.startswith("DATABASE_URL")}
    child = build_child_env("rest", source)
    assert "DATABASE_URL" not in child.env
    assert child.warnings == ()


def test_per_role_override_of_any_allowlisted_variable() -> None:
    source = {**SOURCE, "SERVICE_HEALTH_PORT": "9000", "SERVICE_HEALTH_PORT_WS": "9001"}
    assert env_for("ws", source)["SERVICE_HEALTH_PORT"] == "9001"
    assert env_for("rest", source)["SERVICE_HEALTH_PORT"] == "9000"


def test_per_role_override_cannot_smuggle_a_foreign_secret() -> None:
    source = {**SOURCE, "KALSHI_API_KEY_ID_RAG": "smuggled", "OPENAI_API_KEY_REST": "smuggled"}
    assert "KALSHI_API_KEY_ID" not in env_for("rag", source)
    assert "OPENAI_API_KEY" not in env_for("rest", source)
    assert "smuggled" not in env_for("rag", source).values()
    assert "smuggled" not in env_for("rest", source).values()


def test_env_file_parsing() -> None:
    text = """
# a comment
KALSHI_HOST=https://example.test/trade-api/v2
export LOG_LEVEL=DEBUG
QUOTED="a value with # hash"
SINGLE='x y'
TRAILING=value # comment
EMPTY=
"""
    assert parse_env_file(text) == {
        "KALSHI_HOST": "https://example.test/trade-api/v2",
        "LOG_LEVEL": "DEBUG",
        "QUOTED": "a value with # hash",
        "SINGLE": "x y",
        "TRAILING": "value",
        "EMPTY": "",
    }


@pytest.mark.parametrize("line", ["NOEQUALS", "1BAD=x", "has space=x"])
def test_env_file_bad_line_names_file_and_line(line: str) -> None:
    with pytest.raises(EnvFileError, match=r"f\.env:2"):
        parse_env_file(f"OK=1\n{line}\n", "f.env")


_keys = st.text(string.ascii_uppercase + "_", min_size=1, max_size=12).filter(
    lambda k: k != "export"
)
_values = st.text(string.ascii_letters + string.digits + "/:@.-_=+,", max_size=30)


@given(st.dictionaries(_keys, _values, max_size=8))
def test_env_file_round_trips_simple_values(pairs: dict[str, str]) -> None:
    text = "\n".join(f"{k}={v}" for k, v in pairs.items())
    assert parse_env_file(text) == pairs


def test_env_file_adds_but_does_not_override(tmp_path: Path) -> None:
    path = tmp_path / "run.env"
    path.write_text("LOG_LEVEL=DEBUG\nNEW_VAR=from-file\n")
    merged = supervisor_environment({"LOG_LEVEL": "INFO", "ENV_FILE": str(path)})
    assert merged["LOG_LEVEL"] == "INFO"
    assert merged["NEW_VAR"] == "from-file"
    explicit = supervisor_environment({}, path)
    assert explicit["LOG_LEVEL"] == "DEBUG"


def test_missing_env_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match=r"missing\.env"):
        supervisor_environment({}, tmp_path / "missing.env")


def test_url_password_finds_raw_and_decoded_forms() -> None:
    assert set(url_password("postgresql://u:p%40ss@h/db")) == {"p%40ss", "p@ss"}
    assert url_password("host=db user=u password=hunter22 dbname=x") == ["hunter22", "hunter22"]
    assert url_password("postgresql://u@h/db") == []


def test_secret_values_cover_contract_secrets_urls_and_pem_body(tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    pem.write_text(f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    source = {
        **SOURCE,
        "KALSHI_PRIVATE_KEY_PEM_PATH": str(pem),
        "RABBITMQ_URL": "amqp://mq:mqpass@mq/",
        "WEB_PORTAL_PASSWORD_PORTAL": "override-pw",
    }
    secrets = secret_values(source)
    for expected in (
        "key-id-123",
        str(pem),
        body,
        "sk-openai",
        "portal-password",
        "override-pw",
        "restpw",
        "wspw",
        "sharedpw",
        "mqpass",
    ):
        assert expected in secrets
    assert "aws-secret" not in secrets  # not a contract secret: it never reaches a child
