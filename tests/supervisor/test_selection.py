"""Which roles `ingestor run` starts, found without importing role code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ingestor import contract
from ingestor.supervisor.selection import UnknownRoleError, installed_roles, select_roles

ALL = list(contract.ROLES)


def test_only_wins_over_kalshi_run_mode_and_keeps_contract_order() -> None:
    assert select_roles("ws, rest", "worker", ALL) == ["rest", "ws"]


def test_kalshi_run_mode_names_the_role_when_only_is_absent() -> None:
    assert select_roles(None, "worker", ALL) == ["worker"]
    assert select_roles(None, "rest,ws", ALL) == ["rest", "ws"]


@pytest.mark.parametrize("run_mode", [None, "", "all", "ALL"])
def test_all_or_nothing_means_every_installed_role(run_mode: str | None) -> None:
    assert select_roles(None, run_mode, ["ws", "rest"]) == ["rest", "ws"]
    assert select_roles("all", None, ["rag"]) == ["rag"]


def test_unknown_role_lists_the_valid_ones_and_exits_2() -> None:
    with pytest.raises(UnknownRoleError) as err:
        select_roles("rest,nope", None, ALL)
    assert "unknown role 'nope'" in str(err.value)
    assert "valid: all, rest, ws, worker, rag, portal" in str(err.value)
    assert err.value.exit_code == 2


def test_a_role_without_a_module_is_refused_by_name() -> None:
    with pytest.raises(UnknownRoleError, match=r"role portal is not installed.*installed: rest"):
        select_roles("portal", None, ["rest"])


def test_nothing_installed_is_an_error() -> None:
    with pytest.raises(UnknownRoleError, match="no role is installed"):
        select_roles(None, None, [])


def test_installed_roles_never_imports_role_code() -> None:
    code = (
        "import json, sys\n"
        "import ingestor.supervisor.cli, ingestor.supervisor.supervise\n"
        "from ingestor.supervisor.selection import installed_roles\n"
        "found = installed_roles()\n"
        "print(json.dumps([found, [m for m in sys.modules if m.startswith('roles.')]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found, imported = json.loads(out)
    assert imported == []
    assert found == installed_roles()
    assert set(found) <= set(contract.ROLES)
