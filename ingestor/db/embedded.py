"""The embedded default: PostgreSQL 16 with pgvector from the `pgserver` package.

Used when no DATABASE_URL is set. The server lives in a per-user data directory
(INGESTOR_HOME/pg) and keeps running between commands, so every command reuses it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
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


def stop_embedded(datadir: Path, timeout: float = 15.0) -> bool:
    """Fast-shutdown the embedded server in `datadir` (SIGINT to its postmaster); True if it ran."""
    pid_file = datadir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    log.warning("embedded postgres did not stop in %ss pid=%s datadir=%s", timeout, pid, datadir)
    return True
