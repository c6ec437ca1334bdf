"""The embedded default: PostgreSQL 16 with pgvector from the `pgserver` package.

Used when no DATABASE_URL is set. The server lives in a per-user data directory
(INGESTOR_HOME/pg) and keeps running between commands, so every command reuses it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ingestor.errors import DatabaseUnavailable
from ingestor.paths import embedded_pg_dir

log = logging.getLogger(__name__)


def start_embedded(datadir: Path | None = None, *, cleanup: str | None = None) -> str:
    """Start (or reuse) the embedded server and return its admin URL (unix socket)."""
    datadir = datadir or embedded_pg_dir()
    datadir.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(datadir, cleanup_mode=cleanup)
    except Exception as exc:
        raise DatabaseUnavailable(
            f"could not start the embedded PostgreSQL in {datadir}: {exc}; "
            "set DATABASE_URL to use another server"
        ) from None
    uri = server.get_uri()
    log.info("embedded postgres datadir=%s", datadir)
    return uri


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def with_user(url: str, user: str, password: str | None = None) -> str:
    """The same server and database, logging in as another user."""
    params = conninfo_to_dict(url)
    params["user"] = user
    params.pop("password", None)
    if password:
        params["password"] = password
    return make_conninfo(**params)


def resolve_url(url: str | None, home: Path | None = None) -> str:
    """DATABASE_URL when set, otherwise the embedded server's admin URL."""
    if url:
        return url
    datadir = embedded_pg_dir(home) if home else None
    return start_embedded(datadir)


def stop_embedded(datadir: Path) -> None:
    """Stop the embedded server in `datadir` if it runs (tests and clean-up scripts)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            pgserver.get_server(datadir, cleanup_mode="stop").cleanup()
    except Exception as exc:  # a server that never started or already stopped
        log.debug("embedded postgres stop datadir=%s: %s", datadir, exc)
