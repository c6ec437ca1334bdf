"""One server-side WebSocket connection on trio: reader, batching writer and heartbeat pings."""

from __future__ import annotations

import base64
import hashlib
import logging
import struct

import trio
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ingestor.sim.ws_protocol import Session

log = logging.getLogger(__name__)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_COMMAND_BYTES = 1 << 20
HEARTBEAT = b"heartbeat"


def accept_key(client_key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455)."""
    return base64.b64encode(hashlib.sha1(client_key.strip() + _GUID).digest())  # noqa: S324


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final server text frame; built by hand because it is the hot path."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class WsConn:
    """Frames queued by the hub or the command handler are written in batches by one task."""

    def __init__(
        self,
        conn_id: int,
        stream: trio.abc.Stream,
        session: Session,
        *,
        trailing: bytes = b"",
        ping_interval: float = 10.0,
    ) -> None:
        self.conn_id = conn_id
        self.stream = stream
        self.session = session
        self.ping_interval = ping_interval
        self.ws = Connection(ConnectionType.SERVER, trailing_data=trailing)
        self.outbox: list[bytes] = []
        self.pending = 0
        self.frames_sent = 0
        self.closed = False
        self._wake = trio.Event()
        self._closing = False
        self._flushed = trio.Event()
        self._scope: trio.CancelScope | None = None

    def push(self, data: bytes) -> None:
        """Queue raw bytes for the writer."""
        if self.closed:
            return
        self.outbox.append(data)
        self.pending += len(data)
        self._wake.set()

    def push_text(self, text: str) -> None:
        """Queue one text frame."""
        self.push(text_frame(text.encode()))
        self.frames_sent += 1

    def abort(self) -> None:
        """Cut the connection now, without a close frame."""
        self.closed = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Serve until the client closes, the connection breaks, or abort() is called."""
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                if self.closed:
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._writer)
                if self.ping_interval > 0:
                    nursery.start_soon(self._pinger)
                await self._reader()
                nursery.cancel_scope.cancel()
        finally:
            self.closed = True
            await trio.aclose_forcefully(self.stream)

    async def _reader(self) -> None:
        parts: list[str] = []
        size = 0
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            try:
                self.ws.receive_data(bytes(data))
                for event in self.ws.events():
                    if isinstance(event, TextMessage):
                        parts.append(event.data)
                        size += len(event.data)
                        if size > MAX_COMMAND_BYTES:
                            await self._close(1009)
                            return
                        if event.message_finished:
                            text = "".join(parts)
                            parts.clear()
                            size = 0
                            for frame in self.session.handle(text):
                                self.push_text(frame)
                    elif isinstance(event, BytesMessage):
                        if event.message_finished:
                            for frame in self.session.handle(""):
                                self.push_text(frame)
                    elif isinstance(event, Ping):
                        self.push(self.ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        if self.ws.state is ConnectionState.REMOTE_CLOSING:
                            self.push(self.ws.send(event.response()))
                        await self._drain()
                        return
            except RemoteProtocolError as exc:
                log.info("ws protocol error conn=%d error=%s", self.conn_id, exc)
                return

    async def _close(self, code: int) -> None:
        try:
            self.push(self.ws.send(CloseConnection(code=code)))
        except LocalProtocolError:
            return
        await self._drain()

    async def _drain(self) -> None:
        self._closing = True
        self._wake.set()
        with trio.move_on_after(2):
            await self._flushed.wait()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if self.outbox:
                data = b"".join(self.outbox)
                self.outbox.clear()
                self.pending = 0
                try:
                    await self.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.abort()
                    return
            if self._closing and not self.outbox:
                self._flushed.set()
                return

    async def _pinger(self) -> None:
        while True:
            await trio.sleep(self.ping_interval)
            if self.ws.state is not ConnectionState.OPEN:
                return
            self.push(self.ws.send(Ping(payload=HEARTBEAT)))
