"""An in-memory Kalshi WS server double, for client tests on trio's mock clock.

It speaks the subscribe / update_subscription / unsubscribe / list_subscriptions subset the
client uses, and can misbehave on request: refuse connects, stay silent, reject markets
without naming them, end subscriptions with terminal errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import CloseReason, ConnectionClosed, HandshakeError


class FakeConnection:
    """Client-facing side of one fake WS connection."""

    def __init__(self, server: FakeServer, headers: list[tuple[bytes, bytes]]) -> None:
        self.server = server
        self.headers = dict(headers)
        self.commands: list[dict[str, Any]] = []
        self.subs: dict[int, tuple[str, set[str] | None]] = {}
        self.next_sid = 1
        self.closed = False
        self._send, self._receive = trio.open_memory_channel[str](math.inf)

    # ---- the client's view -----------------------------------------------------------------

    async def get_message(self) -> str:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed(CloseReason(1006, "dropped")) from None

    async def send_message(self, message: str | bytes) -> None:
        if self.closed:
            raise ConnectionClosed(CloseReason(1006, "dropped"))
        command = json.loads(message)
        self.commands.append(command)
        if self.server.silent:
            return
        for frame in self._handle(command):
            self.push(frame)

    # ---- the server's controls --------------------------------------------------------------

    def push(self, frame: dict[str, Any] | str) -> None:
        if not self.closed:
            self._send.send_nowait(frame if isinstance(frame, str) else json.dumps(frame))

    def drop(self) -> None:
        self.closed = True
        self._send.close()

    def markets(self, channel: str = "ticker") -> set[str] | None:
        for ch, markets in self.subs.values():
            if ch == channel:
                return set(markets) if markets is not None else None
        return None

    def sid_of(self, channel: str) -> int | None:
        return next((sid for sid, (ch, _) in self.subs.items() if ch == channel), None)

    def commands_named(self, name: str) -> list[dict[str, Any]]:
        return [c for c in self.commands if c["cmd"] == name]

    # ---- protocol ---------------------------------------------------------------------------

    def _unknown(self, cid: int, tickers: list[str]) -> dict[str, Any] | None:
        bad = [t for t in tickers if t in self.server.unknown]
        if not bad:
            return None
        msg: dict[str, Any] = {"code": 16, "msg": "Market not found"}
        if self.server.name_unknown:
            msg["market_ticker"] = bad[0]
        return {"id": cid, "type": "error", "msg": msg}

    def _handle(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        cid = command["id"]
        params = command.get("params") or {}
        cmd = command["cmd"]
        if cmd == "subscribe":
            tickers = params.get("market_tickers")
            if tickers is not None and self.server.fail_ticker_subscribes > 0:
                self.server.fail_ticker_subscribes -= 1
                self.server.failed_at.append(trio.current_time())
                return [{"id": cid, "type": "error", "msg": {"code": 17, "msg": "Internal"}}]
            error = self._unknown(cid, tickers or [])
            if error:
                return [error]
            out = []
            for channel in params["channels"]:
                sid = self.next_sid
                self.next_sid += 1
                self.subs[sid] = (channel, set(tickers) if tickers is not None else None)
                out.append(
                    {"id": cid, "type": "subscribed", "msg": {"channel": channel, "sid": sid}}
                )
            return out
        if cmd == "update_subscription":
            sid = params["sids"][0]
            if sid not in self.subs:
                return [{"id": cid, "type": "error", "msg": {"code": 7, "msg": "Unknown sid"}}]
            error = self._unknown(cid, params["market_tickers"])
            if error:
                return [error]
            markets = self.subs[sid][1]
            assert markets is not None
            if params["action"] == "add_markets":
                markets.update(params["market_tickers"])
            else:
                markets.difference_update(params["market_tickers"])
            return [
                {
                    "id": cid,
                    "sid": sid,
                    "seq": 1,
                    "type": "ok",
                    "msg": {"market_tickers": sorted(markets)},
                }
            ]
        if cmd == "unsubscribe":
            out = []
            for sid in params["sids"]:
                self.subs.pop(sid, None)
                out.append({"id": cid, "sid": sid, "seq": 1, "type": "unsubscribed"})
            return out
        if cmd == "list_subscriptions":
            return [
                {
                    "id": cid,
                    "type": "ok",
                    "msg": [{"channel": ch, "sid": sid} for sid, (ch, _) in self.subs.items()],
                }
            ]
        return [{"id": cid, "type": "error", "msg": {"code": 5, "msg": "Unknown command"}}]


class FakeServer:
    """Hands out FakeConnections through `connect`, the client's connector hook."""

    def __init__(self) -> None:
        self.connections: list[FakeConnection] = []
        self.attempts: list[float] = []
        self.fail_connects = 0
        self.silent = False
        self.unknown: set[str] = set()
        self.name_unknown = True
        self.fail_ticker_subscribes = 0
        self.failed_at: list[float] = []
        self.connected = trio.Event()

    @property
    def current(self) -> FakeConnection:
        return self.connections[-1]

    @asynccontextmanager
    async def _open(
        self, url: str, headers: list[tuple[bytes, bytes]]
    ) -> AsyncIterator[FakeConnection]:
        self.attempts.append(trio.current_time())
        if self.fail_connects > 0:
            self.fail_connects -= 1
            raise HandshakeError("refused")
        conn = FakeConnection(self, headers)
        self.connections.append(conn)
        self.connected.set()
        self.connected = trio.Event()
        try:
            yield conn
        finally:
            conn.closed = True

    def connect(self, url: str, headers: list[tuple[bytes, bytes]]) -> Any:
        return self._open(url, headers)
