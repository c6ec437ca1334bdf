"""HTTP/1.1 on trio with h11: keep-alive REST requests and WebSocket upgrades on one port."""

from __future__ import annotations

import logging
from typing import Protocol

import h11
import trio

from ingestor.sim.httpmsg import HttpRequest, HttpResponse, error_body
from ingestor.sim.ws_conn import accept_key

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
_REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found",
            405: b"Method Not Allowed", 429: b"Too Many Requests",
            500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable",
            504: b"Gateway Timeout"}


class Application(Protocol):
    """What the connection loop hands requests to."""

    async def http(self, req: HttpRequest) -> HttpResponse:
        """Answer a plain HTTP request."""
        ...

    def websocket_refusal(self, req: HttpRequest) -> HttpResponse | None:
        """None to accept a WebSocket upgrade, else the response that refuses it."""
        ...

    async def websocket(self, stream: trio.abc.Stream, trailing: bytes, req: HttpRequest) -> None:
        """Serve an accepted WebSocket until it ends."""
        ...


def _is_upgrade(req: h11.Request) -> bool:
    return any(name == b"upgrade" and value.lower() == b"websocket" for name, value in req.headers)


def _headers(req: h11.Request) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in req.headers}


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> object | None:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        conn.receive_data(bytes(data))


async def _send(
    conn: h11.Connection, stream: trio.abc.Stream, resp: HttpResponse, *, close: bool = False
) -> None:
    headers = [
        (b"content-type", resp.content_type.encode()),
        (b"content-length", str(len(resp.body)).encode()),
        (b"server", b"kalshi-sim"),
        *((k.encode(), v.encode()) for k, v in resp.headers),
    ]
    if close:
        headers.append((b"connection", b"close"))
    data = conn.send(h11.Response(status_code=resp.status, headers=headers,
                                  reason=_REASONS.get(resp.status, b"")))
    data = (data or b"") + (conn.send(h11.Data(data=resp.body)) or b"")
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data)


async def serve_connection(app: Application, stream: trio.SocketStream) -> None:
    """Handle one TCP connection: requests in order, or a single WebSocket upgrade."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        peer = stream.socket.getpeername()
        client = f"{peer[0]}:{peer[1]}"
    except OSError:
        client = ""
    try:
        while True:
            try:
                event = await _next_event(conn, stream)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _send(conn, stream, HttpResponse.json(
                        400, error_body("bad_request", str(exc))), close=True)
                return
            if event is None or isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                continue
            req = HttpRequest.build(
                event.method.decode("ascii"), event.target.decode("latin-1"), _headers(event),
                client,
            )
            while True:  # drain any request body; these endpoints read none
                ev = await _next_event(conn, stream)
                if ev is None or isinstance(ev, h11.EndOfMessage | h11.ConnectionClosed):
                    break
            if _is_upgrade(event):
                await _upgrade(app, conn, stream, req)
                return
            resp = await app.http(req)
            await _send(conn, stream, resp)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await trio.aclose_forcefully(stream)


async def _upgrade(
    app: Application, conn: h11.Connection, stream: trio.SocketStream, req: HttpRequest
) -> None:
    refusal = app.websocket_refusal(req)
    key = req.headers.get("sec-websocket-key")
    if refusal is None and (not key or req.headers.get("sec-websocket-version") != "13"):
        refusal = HttpResponse.json(400, error_body("bad_request", "invalid websocket handshake"))
    if refusal is not None:
        await _send(conn, stream, refusal, close=True)
        return
    assert key is not None
    data = conn.send(h11.InformationalResponse(status_code=101, headers=[
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", accept_key(key.encode("latin-1"))),
    ]))
    await stream.send_all(data or b"")
    trailing, _ = conn.trailing_data
    await app.websocket(stream, trailing, req)
