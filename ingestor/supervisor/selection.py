"""Which roles `ingestor run` starts: `--only`, else legacy `KALSHI_RUN_MODE`, else all."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from ingestor import contract
from ingestor.errors import ConfigurationError


class UnknownRoleError(ConfigurationError):
    """A role name that is not in the contract, or whose module is not installed."""


def installed_roles() -> list[str]:
    """Contract roles that have a module under `roles/`, found without importing it."""
    out: list[str] = []
    for role in contract.ROLES:
        try:
            if importlib.util.find_spec(f"roles.{role}") is not None:
                out.append(role)
        except (ImportError, ValueError):
            continue
    return out


def parse_role_list(text: str) -> list[str]:
    """'rest, ws' -> ['rest', 'ws']; empty parts are ignored."""
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def select_roles(only: str | None, run_mode: str | None, available: Sequence[str]) -> list[str]:
    """Roles to run, in contract order; raises UnknownRoleError listing the valid names."""
    requested_by = "--only"
    text = only
    if not text and run_mode and run_mode.strip():
        text, requested_by = run_mode, "KALSHI_RUN_MODE"
    names = parse_role_list(text or "all")
    if not names:
        raise UnknownRoleError(
            f"{requested_by} names no role; valid: all, {', '.join(contract.ROLES)}"
        )
    if "all" in names:
        if not available:
            raise UnknownRoleError(
                f"no role is installed (no module under roles/ for {', '.join(contract.ROLES)})"
            )
        return [r for r in contract.ROLES if r in available]
    unknown = [n for n in names if n not in contract.ROLES]
    if unknown:
        raise UnknownRoleError(
            f"{requested_by}: unknown role {', '.join(map(repr, unknown))}; "
            f"valid: all, {', '.join(contract.ROLES)}"
        )
    missing = [n for n in names if n not in available]
    if missing:
        raise UnknownRoleError(
            f"{requested_by}: role {', '.join(missing)} is not installed (no roles/<name>.py); "
            f"installed: {', '.join(available) or 'none'}"
        )
    return [r for r in contract.ROLES if r in names]
