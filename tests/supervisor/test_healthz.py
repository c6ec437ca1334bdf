"""`serve_healthz`: a tiny HTTP endpoint that answers 200/503 from a live check."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import trio

from ingestor.config import load_settings
from ingestor.db.ingest_state import StateEntry, format_ts
from ingestor.supervisor.healthz import freshness_check, serve_healthz


async def http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


async def serving(
    nursery: trio.Nursery, check: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]], **kw: Any
) -> int:
    return await nursery.start(partial(serve_healthz, 0, "127.0.0.1", check, **kw))


async def test_healthy_and_unhealthy_answers(nursery: trio.Nursery) -> None:
    state = {"ok": True}

    async def check() -> tuple[bool, dict[str, Any]]:
        return state["ok"], {"role": "ws"}

    port = await serving(nursery, check)
    status, headers, body = await http(port, get("/healthz"))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"ok": True, "role": "ws"}
    state["ok"] = False
    status, _, body = await http(port, get("/healthz?verbose=1"))
    assert status == 503 and json.loads(body)["ok"] is False


async def test_unknown_paths_methods_and_garbage(nursery: trio.Nursery) -> None:
    async def check() -> tuple[bool, dict[str, Any]]:
        return True, {}

    port = await serving(nursery, check)
    assert (await http(port, get("/")))[0] == 404
    status, headers, _ = await http(port, get("/healthz", "POST"))
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, _, body = await http(port, get("/healthz", "HEAD"))
    assert status == 200 and body == b""
    assert (await http(port, b"NOT HTTP AT ALL\r\n\r\n"))[0] == 400


async def test_a_slow_or_failing_check_answers_503(nursery: trio.Nursery) -> None:
    async def slow() -> tuple[bool, dict[str, Any]]:
        await trio.sleep(10)
        return True, {}

    async def failing() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("db down")

    slow_port = await serving(nursery, slow, check_timeout=0.2)
    status, _, body = await http(slow_port, get("/healthz"))
    assert status == 503 and "longer than" in json.loads(body)["error"]
    failing_port = await serving(nursery, failing)
    status, _, body = await http(failing_port, get("/healthz"))
    assert status == 503 and "RuntimeError" in json.loads(body)["error"]


async def test_freshness_check_reads_state_on_every_request() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    reads = []

    async def read_state() -> dict[str, StateEntry]:
        reads.append(1)
        value = now - timedelta(seconds=30)
        return {
            "last_worker_ts": StateEntry("last_worker_ts", value, format_ts(value), value, "worker")
        }

    check = freshness_check("worker", load_settings("worker", {}), read_state, now=lambda: now)
    ok, details = await check()
    assert ok and details["keys"][0]["verdict"] == "fresh"
    await check()
    assert len(reads) == 2
