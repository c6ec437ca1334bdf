"""`ingestor status`: every ingest_state key with owner, value, age and a fresh/stale verdict."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestor import contract
from ingestor.config import ConfigError, load_settings
from ingestor.db import ingest_state
from ingestor.db.connect import connect
from ingestor.db.embedded import resolve_url
from ingestor.db.migrations import check_schema
from ingestor.paths import supervisor_status_file
from ingestor.supervisor.health import freshness_thresholds
from ingestor.supervisor.status_file import read_status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    parser.add_argument("--status-file", type=Path, default=None,
                        help="the supervisor's status file (default: INGESTOR_HOME/run/...)")


def _thresholds() -> dict[str, float]:
    """Stale-after seconds per key, from each owning role's settings (defaults if unset)."""
    out: dict[str, float] = {}
    for role in contract.ROLES:
        keys = contract.role_contract(role).state_keys
        if not keys:
            continue
        try:
            settings = load_settings(role)
        except ConfigError:
            settings = contract.role_contract(role).settings.model_construct()
        for key, seconds in freshness_thresholds(role, settings).items():
            out[key] = min(seconds, out.get(key, seconds))
    return out


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def state_rows(entries: dict[str, ingest_state.StateEntry], now: datetime) -> list[dict[str, Any]]:
    thresholds = _thresholds()
    rows = []
    for key, owners in contract.STATE_KEYS.items():
        entry = entries.get(key)
        age = entry.age_seconds(now) if entry else None
        limit = thresholds.get(key)
        if entry is None:
            verdict = "missing"
        elif age is None:
            verdict = "unreadable"
        else:
            verdict = "fresh" if limit is None or age <= limit else "stale"
        rows.append({
            "key": key,
            "owner": ",".join(owners),
            "value": entry.raw_value if entry else None,
            "age_seconds": round(age, 3) if age is not None else None,
            "stale_after_seconds": limit,
            "verdict": verdict,
            "updated_by": entry.updated_by if entry else None,
        })
    return rows


def main(args: argparse.Namespace) -> int:
    settings = load_settings("admin")
    url = resolve_url(settings.database_url, settings.ingestor_home)
    with connect(url) as conn:
        check_schema(conn)
        entries = ingest_state.read_all(conn)
    now = datetime.now(UTC)
    rows = state_rows(entries, now)
    supervisor = read_status(args.status_file or supervisor_status_file(settings.ingestor_home))
    if args.json:
        print(json.dumps({"ingest_state": rows, "supervisor": supervisor}, indent=2, default=str))
        return 0
    print(f"{'KEY':<20} {'OWNER':<12} {'AGE':>7}  {'VERDICT':<10} {'BY':<7} VALUE")
    for r in rows:
        print(f"{r['key']:<20} {r['owner']:<12} {format_age(r['age_seconds']):>7}  "
              f"{r['verdict']:<10} {r['updated_by'] or '-':<7} {r['value'] or '-'}")
    if supervisor:
        print()
        stale = " (supervisor not running: states are from its last run)" if supervisor.get(
            "stale") else ""
        print(f"supervisor pid {supervisor.get('supervisor_pid')}{stale}")
        print(f"{'ROLE':<8} {'STATE':<9} {'PID':>7} {'RESTARTS':>8}  LAST")
        for role, info in sorted((supervisor.get("roles") or {}).items()):
            print(f"{role:<8} {info.get('state', '?'):<9} {info.get('pid') or '-':>7} "
                  f"{info.get('restarts', 0):>8}  {info.get('last_error_line') or ''}")
    return 0
