"""Connections: friendly errors for a bad URL, and a sync pool driven from trio through threads.

psycopg's async API does not run under trio, so each unit of work (a whole transaction or
batch) runs in a worker thread with a pooled connection; see `Database.run`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import trio
from psycopg_pool import ConnectionPool, PoolTimeout

from ingestor.db.urls import mask_url
from ingestor.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def connect(url: str, *, autocommit: bool = False, timeout: float = 10.0) -> psycopg.Connection:
    """Open one connection or raise DatabaseUnavailable with the password masked."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=max(1, int(timeout)))
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"cannot connect to {mask_url(url)}: {_reason(exc)}"
        ) from None


def _cancel_quietly(conn: psycopg.Connection) -> None:
    try:
        conn.cancel_safe(timeout=5.0)
    except Exception as exc:  # best effort: the pool discards a broken connection anyway
        log.debug("query cancel failed: %s", exc)


class Database:
    """A psycopg ConnectionPool bridged to trio: `await db.run(fn)` runs fn(conn) in a thread.

    fn runs inside a transaction that commits when it returns and rolls back when it raises.
    A trio cancellation abandons the thread and cancels the server-side query.
    """

    def __init__(
        self,
        url: str,
        *,
        max_size: int = 4,
        min_size: int = 1,
        name: str = "ingestor",
        configure: Callable[[psycopg.Connection], None] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.pool = ConnectionPool(
            url,
            min_size=min(min_size, max_size),
            max_size=max_size,
            open=False,
            name=name,
            configure=configure,
            timeout=timeout,
            kwargs={"connect_timeout": 10},
            reconnect_timeout=float("inf"),
        )
        self.limiter = trio.CapacityLimiter(max_size)

    def open(self, wait_seconds: float = 10.0) -> Database:
        """Open the pool and check one connection, or raise DatabaseUnavailable."""
        conn = connect(self.url, timeout=wait_seconds)
        conn.close()
        self.pool.open(wait=True, timeout=wait_seconds)
        return self

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Database:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) in one transaction on a pooled connection (blocking)."""
        try:
            with self.pool.connection() as conn:
                return fn(conn, *args)
        except PoolTimeout as exc:
            raise DatabaseUnavailable(
                f"no database connection from {mask_url(self.url)} within the pool timeout: {exc}"
            ) from None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(conn, *args) in a worker thread, one transaction per call."""
        holder: dict[str, psycopg.Connection] = {}

        def work() -> T:
            with self.pool.connection() as conn:
                holder["conn"] = conn
                try:
                    return fn(conn, *args)
                finally:
                    holder.pop("conn", None)

        try:
            return await trio.to_thread.run_sync(work, limiter=self.limiter, abandon_on_cancel=True)
        except trio.Cancelled:
            conn = holder.get("conn")
            if conn is not None:
                threading.Thread(target=_cancel_quietly, args=(conn,), daemon=True).start()
            raise
