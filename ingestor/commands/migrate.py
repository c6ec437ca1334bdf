"""`ingestor migrate`: apply migrations, keep partitions ahead, apply roles and login users."""

from __future__ import annotations

import argparse
import os
import sys

from ingestor import contract
from ingestor.config import AdminSettings, load_settings
from ingestor.db import grants, migrations, partitions
from ingestor.db.connect import connect
from ingestor.db.embedded import resolve_url
from ingestor.logs import setup_logging
from ingestor.paths import embedded_pg_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status", action="store_true", help="list applied and pending migrations"
    )
    parser.add_argument(
        "--roles", action="store_true", help="create group roles, apply the contract's grants"
    )
    parser.add_argument(
        "--create-users",
        action="store_true",
        help="with --roles: create a login user per role (names and passwords from "
        "DATABASE_URL_<ROLE> when set, else kalshi_<role>_user with a generated password)",
    )
    parser.add_argument(
        "--print-roles", action="store_true", help="print the roles SQL generated from the contract"
    )


def _print_status(conn: object) -> int:
    rows = migrations.status_rows(conn)  # type: ignore[arg-type]
    print(f"{'VERSION':<8} {'NAME':<32} {'STATE':<8} APPLIED_AT")
    for m, rec, state in rows:
        when = rec.applied_at.isoformat(timespec="seconds") if rec else "-"
        print(f"{m.version:<8} {m.name:<32} {state:<8} {when}")
    pending = sum(1 for _, _, s in rows if s == "pending")
    changed = sum(1 for _, _, s in rows if s == "CHANGED")
    print(f"{len(rows) - pending} applied, {pending} pending, {changed} changed")
    return 1 if changed else 0


def _create_users(conn: object, embedded: bool) -> None:
    from psycopg.conninfo import conninfo_to_dict

    for role in contract.ROLES:
        role_url = os.environ.get(f"DATABASE_URL_{role.upper()}")
        user = password = None
        if role_url:
            params = conninfo_to_dict(role_url)
            user, password = params.get("user"), params.get("password")
        elif not embedded:
            password = grants.generate_password()
        made = grants.ensure_login_user(conn, role, user, password)  # type: ignore[arg-type]
        if made.password and not role_url:
            print(f"# login user for {role}: set this in the supervisor's environment")
            print(f"DATABASE_URL_{role.upper()}=<url of this database with user "
                  f"{made.user} and password {made.password}>")
        else:
            verb = "created" if made.created else "updated"
            print(f"login user for {role}: {made.user} ({verb})")


def main(args: argparse.Namespace) -> int:
    if args.print_roles:
        sys.stdout.write(grants.render_roles_sql())
        return 0
    settings = load_settings("admin")
    assert isinstance(settings, AdminSettings)
    setup_logging(settings.log_level, settings.log_format)
    embedded = not settings.database_url
    url = resolve_url(settings.database_url, settings.ingestor_home)
    if embedded:
        print(f"using the embedded PostgreSQL in {embedded_pg_dir(settings.ingestor_home)}")
    with connect(url, autocommit=True) as conn:
        if args.status:
            return _print_status(conn)
        applied = migrations.migrate(conn)
        for m in applied:
            print(f"applied {m.path.name}")
        version = migrations.current_version(conn)
        print(f"schema at version {version}" + ("" if applied else " (nothing to apply)"))
        made = partitions.ensure_ahead(conn, settings.partition_months_ahead)
        if made:
            print(f"created {made} partition(s)")
        if args.roles or embedded or grants.roles_exist(conn):
            grants.apply_roles(conn)
            print("roles and grants applied")
        if args.create_users or embedded:
            _create_users(conn, embedded)
    return 0
