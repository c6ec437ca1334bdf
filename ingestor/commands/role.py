"""`ingestor role NAME`: run one role in this process (the supervisor's child command)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import signal
import sys
from typing import Any

import trio

from ingestor import contract
from ingestor.config import BaseRoleSettings, load_settings
from ingestor.db.connect import Database, connect
from ingestor.db.embedded import start_embedded, with_user
from ingestor.db.migrations import check_schema, migrate
from ingestor.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    GuardrailViolation,
    SchemaBehind,
    UserError,
)
from ingestor.guardrails import current as current_guardrails
from ingestor.logs import setup_logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help=f"one of: {', '.join(contract.ROLES)}")


def available_roles() -> list[str]:
    """Roles with an implementation in `roles/`, found without importing them."""
    return [r for r in contract.ROLES if importlib.util.find_spec(f"roles.{r}") is not None]


def database_url_for(role: str, settings: BaseRoleSettings) -> str:
    """DATABASE_URL, else the embedded server logged in as the role's own user."""
    if settings.database_url:
        return settings.database_url
    return with_user(start_embedded(settings.ingestor_home and settings.ingestor_home / "pg"),
                     contract.db_login_user(role))


async def _serve(main: Any, settings: BaseRoleSettings, db: Database) -> None:
    async with trio.open_nursery() as nursery:

        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    log.info("stopping on signal=%s", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

        nursery.start_soon(stop_on_signal)
        await main(settings, db)
        nursery.cancel_scope.cancel()


# EX_TEMPFAIL: the supervisor backs off and retries without counting it toward FATAL.
EXIT_NOT_READY = 75


def main(args: argparse.Namespace) -> int:
    try:
        return _run_role(args.name)
    except (DatabaseUnavailable, SchemaBehind) as exc:
        print(f"ingestor role {args.name}: {exc}", file=sys.stderr)
        return EXIT_NOT_READY


def _run_role(role: str) -> int:
    if role not in contract.ROLES:
        raise ConfigurationError(f"unknown role {role!r}; valid roles: {', '.join(contract.ROLES)}")
    if role not in available_roles():
        raise ConfigurationError(f"role {role} is not available in this installation")
    try:
        current_guardrails().check_entrypoint(role)
    except GuardrailViolation as exc:
        raise ConfigurationError(str(exc)) from None
    settings = load_settings(role)
    setup_logging(settings.log_level, settings.log_format)
    url = database_url_for(role, settings)
    db = Database(url, max_size=settings.db_pool_size, name=f"ingestor-{role}")
    db.open()
    try:
        if settings.db_init_schema:
            with connect(url, autocommit=True) as conn:
                migrate(conn)
        db.run_sync(check_schema)
        module = importlib.import_module(f"roles.{role}")
        log.info("role starting role=%s", role)
        try:
            trio.run(_serve, module.main, settings, db)
        except BaseExceptionGroup as group:
            # A role's own start-up error (bad credentials, say) arrives wrapped by the
            # nursery; show it as the one-line error it is, not as a traceback.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], UserError):
                raise group.exceptions[0] from None
            raise
        log.info("role stopped role=%s", role)
    finally:
        db.close()
    return 0


