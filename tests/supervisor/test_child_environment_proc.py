"""Each child's real environment, read from /proc/<pid>/environ while it runs."""

from __future__ import annotations

import importlib.util
import sys
from functools import partial
from pathlib import Path

import pytest
import trio

from ingestor import contract
from ingestor.supervisor.child import OutputSettings
from ingestor.supervisor.cli import build_specs, role_command
from ingestor.supervisor.logfmt import SecretMasker
from ingestor.supervisor.policy import RestartSettings
from ingestor.supervisor.status_file import RoleStatus, State, StatusBoard
from ingestor.supervisor.supervise import Supervisor, SupervisorOptions

KALSHI = {"KALSHI_API_KEY_ID": "kalshi-key-id-1", "KALSHI_PRIVATE_KEY_PEM_PATH": "/run/k.pem"}
LLM = {
    "OPENAI_API_KEY": "sk-test-openai",
    "OPENAI_BASE_URL": "http://llm.internal/v1",
    "AZURE_OPENAI_API_KEY": "azure-test-key",
    "AZURE_OPENAI_ENDPOINT": "https://azure.example.test",
}
PORTAL = {"WEB_PORTAL_PASSWORD": "portal-pass-123", "WEB_PORTAL_SECRET_KEY": "s" * 40}
DB = {
    f"DATABASE_URL_{r.upper()}": f"postgresql://kalshi_{r}_user:pw-{r}@127.0.0.1:1/x"
    for r in contract.ROLES
}
SOURCE = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "AWS_SECRET_ACCESS_KEY": "aws-should-reach-nobody",
    **KALSHI,
    **LLM,
    **PORTAL,
    **DB,
}
EXPECTED_HOLDERS = {
    **{k: {"rest", "ws", "worker"} for k in KALSHI},
    **{k: {"rag"} for k in LLM},
    **{k: {"portal"} for k in PORTAL},
    "AWS_SECRET_ACCESS_KEY": set(),
}


def proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = [item.decode().split("=", 1) for item in raw.split(b"\0") if item]
    return {k: v for k, v in pairs}


def check_environments(envs: dict[str, dict[str, str]]) -> None:
    assert set(envs) == set(contract.ROLES)
    for var, holders in EXPECTED_HOLDERS.items():
        reached = {role for role, env in envs.items() if var in env}
        assert reached == holders, var
    for role, env in envs.items():
        assert env["DATABASE_URL"] == DB[f"DATABASE_URL_{role.upper()}"]
        assert env["SERVICE_ROLE"] == role
        assert env["PYTHONUNBUFFERED"] == "1"
        assert not any(k.startswith("DATABASE_URL_") for k in env)


async def test_children_receive_only_their_scoped_environment(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    specs = build_specs(list(contract.ROLES), SOURCE, lambda role: sleeper)
    board = StatusBoard(tmp_path / "status.json", contract.ROLES)
    sup = Supervisor(
        specs,
        SupervisorOptions(restart=RestartSettings(startsecs=0.2), grace_seconds=5),
        board=board,
        output=OutputSettings(sink=lambda line: None, masker=SecretMasker()),
    )
    envs: dict[str, dict[str, str]] = {}
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(sup.run, handle_signals=False))
            while not all(board.get(r).state is State.RUNNING for r in contract.ROLES):
                await trio.sleep(0.02)
            for role in contract.ROLES:
                pid = board.get(role).pid
                assert pid is not None
                envs[role] = proc_environ(pid)
            sup.stop()
    check_environments(envs)


@pytest.mark.skipif(
    not any(importlib.util.find_spec(f"roles.{r}") for r in contract.ROLES),
    reason="no role module exists under roles/ yet; the injected-child test covers env scoping",
)
async def test_real_role_children_receive_only_their_scoped_environment(tmp_path: Path) -> None:
    roles = [r for r in contract.ROLES if importlib.util.find_spec(f"roles.{r}")]
    envs: dict[str, dict[str, str]] = {}

    def capture(role: str, status: RoleStatus) -> None:
        # Called right after the spawn, before the supervisor awaits anything: the child has
        # exec'd but cannot have been reaped yet, whatever it does next (its database is
        # unreachable on purpose, so it soon exits).
        if status.state is State.STARTING and status.pid and role not in envs:
            envs[role] = proc_environ(status.pid)

    specs = build_specs(roles, SOURCE, role_command)
    assert specs[0].argv[1:4] == ("-m", "ingestor", "role")
    board = StatusBoard(tmp_path / "status.json", roles, listener=capture)
    sup = Supervisor(
        specs,
        SupervisorOptions(
            restart=RestartSettings(startsecs=0.2, backoff_initial=5), grace_seconds=5
        ),
        board=board,
        output=OutputSettings(sink=lambda line: None, masker=SecretMasker()),
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(sup.run, handle_signals=False))
            while set(envs) != set(roles):
                await trio.sleep(0.02)
            sup.stop()
    for var, holders in EXPECTED_HOLDERS.items():
        assert {r for r, env in envs.items() if var in env} == holders & set(roles), var
    for role, env in envs.items():
        assert env["DATABASE_URL"] == DB[f"DATABASE_URL_{role.upper()}"]
