"""`ingestor health ROLE`: exit 0 when the role's ingest_state keys are fresh, 1 otherwise.

Thresholds come from the role's own intervals (`freshness_thresholds`), so a role polled every
30 minutes is not called stale after 5; `ingestor status` uses `freshness_thresholds` too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ingestor import contract
from ingestor.config import (
    BaseRoleSettings,
    RagSettings,
    RestSettings,
    WorkerSettings,
    WsSettings,
    load_settings,
)
from ingestor.errors import ConfigurationError
from ingestor.paths import ingestor_home, supervisor_status_file
from ingestor.supervisor.environment import build_child_env, supervisor_environment
from ingestor.supervisor.selection import installed_roles, parse_role_list
from ingestor.supervisor.status_file import read_status

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
UNHEALTHY_PROCESS_STATES = frozenset({"FATAL", "EXITED", "STOPPING"})
_MAX_AGE = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*=\s*(\d+(?:\.\d+)?)\s*s?\s*$")


class StateEntryLike(Protocol):
    """One ingest_state row as `ingestor.db.ingest_state.read_all` returns it."""

    @property
    def key(self) -> str: ...

    @property
    def value(self) -> datetime | None: ...

    @property
    def updated_by(self) -> str: ...

    def age_seconds(self, now: datetime) -> float | None: ...


StateReader = Callable[[str, Mapping[str, str]], Mapping[str, StateEntryLike]]


def _expect(settings: BaseRoleSettings, model: type[BaseRoleSettings], role: str) -> Any:
    if not isinstance(settings, model):
        raise TypeError(f"{role} thresholds need {model.__name__}, got {type(settings).__name__}")
    return settings


def freshness_thresholds(role: str, settings: BaseRoleSettings) -> dict[str, float]:
    """Seconds after which each ingest_state key owned by `role` is stale.

    rest: last_discovery_ts max(2x DISCOVERY_SECONDS, 120), last_min_close_ts max(2x
    BACKFILL_SECONDS, 300); ws: last_ws_tick_ts and last_tick_ts max(3x WS_SUB_REFRESH_SECONDS,
    120); worker: last_worker_ts max(3x WORK_QUEUE_POLL_SECONDS, 60); rag: last_prediction_ts
    max(3x PREDICTION_POLL_SECONDS, 300), only when PREDICTION_ENABLE is on; portal: none.
    """
    if role == "rest":
        s = _expect(settings, RestSettings, role)
        return {
            "last_discovery_ts": max(2 * s.discovery_seconds, 120.0),
            "last_min_close_ts": max(2 * s.backfill_seconds, 300.0),
        }
    if role == "ws":
        s = _expect(settings, WsSettings, role)
        limit = max(3 * s.ws_sub_refresh_seconds, 120.0)
        return {"last_ws_tick_ts": limit, "last_tick_ts": limit}
    if role == "worker":
        s = _expect(settings, WorkerSettings, role)
        return {"last_worker_ts": max(3 * s.work_queue_poll_seconds, 60.0)}
    if role == "rag":
        s = _expect(settings, RagSettings, role)
        if not s.prediction_enable:
            return {}
        return {"last_prediction_ts": max(3 * s.prediction_poll_seconds, 300.0)}
    if role == "portal":
        return {}
    raise ValueError(f"unknown role {role!r}; valid roles: {', '.join(contract.ROLES)}")


@dataclass(frozen=True)
class KeyFreshness:
    """The verdict on one ingest_state key."""

    key: str
    max_age_seconds: float
    age_seconds: float | None
    present: bool = True
    value: datetime | None = None
    updated_by: str | None = None

    @property
    def fresh(self) -> bool:
        return self.age_seconds is not None and self.age_seconds <= self.max_age_seconds

    @property
    def verdict(self) -> str:
        if not self.present:
            return "missing"
        if self.age_seconds is None:
            return "unreadable"
        return "fresh" if self.fresh else "stale"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "verdict": self.verdict,
            "fresh": self.fresh,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 3),
            "max_age_seconds": self.max_age_seconds,
            "value": None if self.value is None else self.value.isoformat(),
            "updated_by": self.updated_by,
        }


def judge_freshness(
    thresholds: Mapping[str, float],
    entries: Mapping[str, StateEntryLike],
    now: datetime,
) -> list[KeyFreshness]:
    """Each threshold key judged by its entry's age; a missing or unparsable key is not fresh.

    The age is the entry's own (`StateEntry.age_seconds`: since the last write for cursor
    keys, since the value otherwise); a timestamp in the future (clock skew) counts as age 0.
    """
    out: list[KeyFreshness] = []
    for key, max_age in thresholds.items():
        entry = entries.get(key)
        if entry is None:
            out.append(KeyFreshness(key, max_age, None, present=False))
            continue
        age = entry.age_seconds(now)
        if age is not None:
            age = max(0.0, age)
        out.append(KeyFreshness(key, max_age, age, True, entry.value, entry.updated_by))
    return out


@dataclass(frozen=True)
class RoleHealth:
    """One role's health: its keys, its supervised process state if known, or an error."""

    role: str
    keys: tuple[KeyFreshness, ...] = ()
    process_state: str | None = None
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return (
            self.error is None
            and self.process_state not in UNHEALTHY_PROCESS_STATES
            and all(k.fresh for k in self.keys)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "healthy": self.healthy,
            "process_state": self.process_state,
            "error": self.error,
            "keys": [k.to_json() for k in self.keys],
        }


def parse_max_age(items: Sequence[str]) -> dict[str, float]:
    """['last_tick_ts=60', ...] -> {'last_tick_ts': 60.0}."""
    out: dict[str, float] = {}
    for item in items:
        match = _MAX_AGE.match(item)
        if not match:
            raise ConfigurationError(f"--max-age {item!r}: expected KEY=SECONDS")
        key = match.group(1)
        if key not in contract.STATE_KEYS:
            known = ", ".join(contract.STATE_KEYS)
            raise ConfigurationError(f"--max-age {key}: unknown ingest_state key; known: {known}")
        out[key] = float(match.group(2))
    return out


def check_roles(
    roles: Sequence[str],
    source: Mapping[str, str],
    overrides: Mapping[str, float],
    read_state: StateReader,
    status: Mapping[str, Any] | None,
    now: datetime,
) -> list[RoleHealth]:
    """Health of each role from its settings (as its process would see them) and ingest_state."""
    thresholds_by_role: dict[str, dict[str, float]] = {}
    settings_errors: dict[str, str] = {}
    for role in roles:
        try:
            settings = load_settings(role, build_child_env(role, source).env)
        except ConfigurationError as exc:
            # Unhealthy, not a usage error: the role cannot run with these settings either.
            settings_errors[role] = str(exc).replace("\n", " ")
            continue
        thresholds_by_role[role] = freshness_thresholds(role, settings)
    covered = {k for t in thresholds_by_role.values() for k in t}
    unused = sorted(set(overrides) - covered)
    if unused and not settings_errors:
        raise ConfigurationError(
            f"--max-age {', '.join(unused)}: not checked for {', '.join(roles)} "
            f"(checked: {', '.join(sorted(covered)) or 'none'})"
        )
    live_roles: Mapping[str, Any] = {}
    if status is not None and not status.get("stale"):
        live_roles = status.get("roles", {})
    results: list[RoleHealth] = []
    for role in roles:
        state = live_roles.get(role, {}).get("state") if role in live_roles else None
        if role in settings_errors:
            results.append(RoleHealth(role, (), state, settings_errors[role]))
            continue
        thresholds = {k: overrides.get(k, v) for k, v in thresholds_by_role[role].items()}
        if not thresholds:
            results.append(RoleHealth(role, (), state))
            continue
        try:
            entries = read_state(role, build_child_env(role, source).env)
        except Exception as exc:  # any failure to read is an unhealthy verdict, not a crash
            results.append(RoleHealth(role, (), state, f"cannot read ingest_state: {exc}"))
            continue
        keys = tuple(judge_freshness(thresholds, entries, now))
        results.append(RoleHealth(role, keys, state))
    return results


def read_state_from_db(role: str, env: Mapping[str, str]) -> Mapping[str, StateEntryLike]:
    """ingest_state through the database layer, logged in as the role's own user."""
    from ingestor.db.connect import connect
    from ingestor.db.embedded import resolve_url, with_user
    from ingestor.db.ingest_state import read_all
    from ingestor.db.migrations import check_schema

    url = env.get("DATABASE_URL")
    if not url:
        home = env.get("INGESTOR_HOME")
        url = with_user(
            resolve_url(None, Path(home) if home else None), contract.db_login_user(role)
        )
    with connect(url) as conn:
        check_schema(conn)
        return read_all(conn)


def resolve_roles(text: str, status: Mapping[str, Any] | None) -> list[str]:
    """'all' means the roles of the running supervisor, else every installed role."""
    names = parse_role_list(text)
    if names == ["all"]:
        if status is not None and not status.get("stale") and status.get("roles"):
            return [r for r in contract.ROLES if r in status["roles"]]
        installed = installed_roles()
        if not installed:
            raise ConfigurationError("no role is installed and no supervisor is running")
        return installed
    unknown = [n for n in names if n not in contract.ROLES]
    if unknown or not names:
        raise ConfigurationError(
            f"unknown role {', '.join(map(repr, unknown)) or '(none)'}; "
            f"valid: all, {', '.join(contract.ROLES)}"
        )
    return names


def render_text(results: Sequence[RoleHealth]) -> str:
    lines: list[str] = []
    for r in results:
        head = f"{r.role}: {'healthy' if r.healthy else 'UNHEALTHY'}"
        if r.process_state:
            head += f" (process {r.process_state})"
        if r.error:
            head += f" - {r.error}"
        if not r.keys and r.error is None:
            head += " - no ingest_state keys to check"
        lines.append(head)
        for k in r.keys:
            age = {"missing": "never written", "unreadable": "value unreadable"}.get(
                k.verdict, f"age {k.age_seconds or 0:.0f}s"
            )
            lines.append(f"  {k.key:<20} {k.verdict.upper():<7} {age} / max {k.max_age_seconds:g}s")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "role",
        metavar="ROLE",
        help="a role, a comma list, or 'all' (the running supervisor's roles, else installed ones)",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument(
        "--max-age",
        action="append",
        default=[],
        metavar="KEY=SECONDS",
        help="override a key's threshold (repeatable)",
    )
    parser.add_argument("--env-file", metavar="FILE", help="as for `ingestor run`")
    parser.add_argument(
        "--status-file",
        metavar="PATH",
        type=Path,
        help="supervisor status file; a FATAL role is unhealthy (default: as for `ingestor run`)",
    )


def main(args: argparse.Namespace, read_state: StateReader = read_state_from_db) -> int:
    source = supervisor_environment(os.environ, args.env_file)
    overrides = parse_max_age(args.max_age)
    status_path = args.status_file or supervisor_status_file(
        ingestor_home(source.get("INGESTOR_HOME"))
    )
    status = read_status(status_path)
    roles = resolve_roles(args.role, status)
    results = check_roles(roles, source, overrides, read_state, status, datetime.now(UTC))
    healthy = all(r.healthy for r in results)
    if args.json:
        print(json.dumps({"healthy": healthy, "roles": [r.to_json() for r in results]}, indent=1))
    else:
        print(render_text(results), file=sys.stdout if healthy else sys.stderr)
    return EXIT_HEALTHY if healthy else EXIT_UNHEALTHY
