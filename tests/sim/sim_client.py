"""Client-side helpers for tests of the simulated exchange: signed headers and WS commands."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from trio_websocket import WebSocketConnection, open_websocket_url

from ingestor.sim import Sim

KEY_ID = "sim-test-key"
START = 1_767_229_200  # 2026-01-01T01:00:00Z
WS_PATH = "/trade-api/ws/v2"


def sign_raw(key: rsa.RSAPrivateKey, message: str, salt: Any = padding.PSS.DIGEST_LENGTH) -> str:
    """Base64 RSA-PSS/SHA-256 signature of an arbitrary message."""
    sig = key.sign(
        message.encode(), padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt),
        hashes.SHA256(),
    )
    return base64.b64encode(sig).decode()


def auth_headers(
    key: rsa.RSAPrivateKey,
    path: str,
    *,
    method: str = "GET",
    ts_ms: int | None = None,
    key_id: str = KEY_ID,
    salt: Any = padding.PSS.DIGEST_LENGTH,
) -> dict[str, str]:
    """The three KALSHI-ACCESS-* headers, signing exactly `path` as given."""
    ts = str(int(time.time() * 1000) if ts_ms is None else ts_ms)
    return {
        "KALSHI-ACCESS-KEY": key_id,
        "KALSHI-ACCESS-TIMESTAMP": ts,
        "KALSHI-ACCESS-SIGNATURE": sign_raw(key, f"{ts}{method}{path}", salt),
    }


def sim_kwargs(key_pair: tuple[bytes, bytes], **overrides: Any) -> dict[str, Any]:
    """open_sim arguments for tests: known key, fixed start, manual clock, no auto ticks."""
    kwargs: dict[str, Any] = {
        "seed": 7, "markets": 20, "rate": 0.0, "public_key_pem": key_pair[1],
        "key_id": KEY_ID, "start_ts": START, "manual_clock": True, "tick_rate": 0.0,
        "history_hours": 12.0,
    }
    kwargs.update(overrides)
    return kwargs


@asynccontextmanager
async def ws_client(
    sim: Sim, key: rsa.RSAPrivateKey, **kwargs: Any
) -> AsyncIterator[WebSocketConnection]:
    """A signed trio-websocket connection to the simulator."""
    headers = [(k.encode(), v.encode()) for k, v in auth_headers(key, WS_PATH).items()]
    async with open_websocket_url(sim.ws_url, extra_headers=headers, **kwargs) as ws:
        yield ws


async def recv(ws: WebSocketConnection, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame as JSON."""
    with trio.fail_after(timeout):
        return json.loads(await ws.get_message())


async def send(ws: WebSocketConnection, cmd_id: int, cmd: str, **params: Any) -> None:
    """Send one command."""
    frame: dict[str, Any] = {"id": cmd_id, "cmd": cmd}
    if params:
        frame["params"] = params
    await ws.send_message(json.dumps(frame))


async def command(
    ws: WebSocketConnection, cmd_id: int, cmd: str, replies: int = 1, **params: Any
) -> list[dict[str, Any]]:
    """Send a command and collect `replies` frames."""
    await send(ws, cmd_id, cmd, **params)
    return [await recv(ws) for _ in range(replies)]
