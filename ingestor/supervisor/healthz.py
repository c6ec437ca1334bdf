"""A tiny `/healthz` HTTP endpoint on trio (h11), for roles started with SERVICE_HEALTH_PORT.

The check runs on every request, so the answer reflects the real work (ingest_state freshness
read from the database), never a timestamp kept fresh by a side thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import h11
import trio

from ingestor.config import BaseRoleSettings
from ingestor.supervisor.health import (
    RoleHealth,
    StateEntryLike,
    freshness_thresholds,
    judge_freshness,
)

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
CHECK_TIMEOUT_SECONDS = 5.0
CONNECTION_TIMEOUT_SECONDS = 10.0
MAX_REQUEST_BYTES = 8 * 1024
MAX_CONNECTIONS = 16


async def serve_healthz(
    port: int,
    host: str,
    check: HealthCheck,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    *,
    check_timeout: float = CHECK_TIMEOUT_SECONDS,
) -> None:
    """Serve GET /healthz on host:port until cancelled: 200 or 503 with the check's JSON.

    `await nursery.start(serve_healthz, port, host, check)` returns the bound port (useful
    with port 0). A check that raises or takes longer than `check_timeout` answers 503.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    limiter = trio.CapacityLimiter(MAX_CONNECTIONS)
    log.info("healthz listening host=%s port=%d", host, bound)

    async def handler(stream: trio.SocketStream) -> None:
        async with limiter:
            await _serve_one(stream, check, check_timeout)

    task_status.started(bound)
    await trio.serve_listeners(handler, listeners)


async def _run_check(check: HealthCheck, timeout: float) -> tuple[bool, dict[str, Any]]:
    try:
        with trio.fail_after(timeout):
            ok, details = await check()
    except trio.TooSlowError:
        return False, {"error": f"health check took longer than {timeout:g}s"}
    except Exception as exc:  # a failing check is an unhealthy answer, not a server error
        log.warning("health check failed error=%r", exc)
        return False, {"error": f"health check failed: {type(exc).__name__}"}
    return bool(ok), dict(details)


async def _serve_one(stream: trio.SocketStream, check: HealthCheck, check_timeout: float) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
    try:
        with trio.move_on_after(CONNECTION_TIMEOUT_SECONDS):
            request = await _read_request(stream, conn)
            if request is None:
                return
            status, body = await _respond_to(request, check, check_timeout)
            await _send(stream, conn, status, body, head=request.method == b"HEAD")
    except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        if conn.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
            with contextlib.suppress(
                h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                await _send(stream, conn, 400, {"error": "bad request"}, head=False)
    finally:
        await stream.aclose()


async def _read_request(stream: trio.SocketStream, conn: h11.Connection) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(4096)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            return event
        return None


async def _respond_to(
    request: h11.Request, check: HealthCheck, check_timeout: float
) -> tuple[int, dict[str, Any]]:
    path = request.target.split(b"?", 1)[0]
    if path not in {b"/healthz", b"/healthz/"}:
        return 404, {"error": "not found; try /healthz"}
    if request.method not in {b"GET", b"HEAD"}:
        return 405, {"error": "method not allowed; use GET"}
    ok, details = await _run_check(check, check_timeout)
    return (200 if ok else 503), {"ok": ok, **details}


async def _send(
    stream: trio.SocketStream,
    conn: h11.Connection,
    status: int,
    body: dict[str, Any],
    *,
    head: bool,
) -> None:
    payload = json.dumps(body, default=str, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
    ]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
    if not head:
        out += conn.send(h11.Data(data=payload)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(out)


def freshness_check(
    role: str,
    settings: BaseRoleSettings,
    read_state: Callable[[], Awaitable[Mapping[str, StateEntryLike]]],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> HealthCheck:
    """A `check` for `serve_healthz`: the role's ingest_state keys against its thresholds."""
    thresholds = freshness_thresholds(role, settings)

    async def check() -> tuple[bool, dict[str, Any]]:
        entries = await read_state()
        health = RoleHealth(role, tuple(judge_freshness(thresholds, entries, now())))
        return health.healthy, health.to_json()

    return check
