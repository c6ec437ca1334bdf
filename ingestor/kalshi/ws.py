"""Kalshi WS client on trio-websocket: converges the server to the wanted subscriptions.

The caller declares what it wants (`set_markets`); the client subscribes, batches
`update_subscription` calls, resubscribes after terminal errors and reconnects (jittered backoff)
after any drop or a silent connection. Parsed data frames and connection events come out of
one memory channel, in order, so a consumer can record the gap windows around disconnections.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    DisconnectionTimeout,
    HandshakeError,
    open_websocket_url,
)

from ingestor.kalshi.endpoints import normalize_ws_url
from ingestor.kalshi.errors import (
    KalshiWSError,
    WSAlreadySubscribedError,
    WSConnectionError,
    WSMarketNotFoundError,
    WSReplyTimeoutError,
    WSTooManyRequestsError,
    WSUnknownSubscriptionError,
)
from ingestor.kalshi.paging import chunks
from ingestor.kalshi.retry import Backoff
from ingestor.kalshi.signing import Signer
from ingestor.kalshi.ws_protocol import (
    MARKET_LIFECYCLE,
    TICKER,
    CommandBuilder,
    DataMessage,
    ErrorReply,
    OkReply,
    Reply,
    SubscribedReply,
    SubscriptionInfo,
    UpdateAction,
    WSCommand,
    WSStats,
    parse_frame,
    shorten,
)

log = logging.getLogger(__name__)

# connected: handshake done; synced: server holds exactly the wanted subscriptions;
# subscription_lost: a terminal error (10/17/25) ended a subscription (data may be missing until
# the next `synced`); disconnected: the connection is gone (data missing until the next `synced`).
EventKind = Literal["connected", "synced", "subscription_lost", "disconnected"]


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A change of connection state; `at` is wall-clock time, `clock` trio's clock.

    For `disconnected` and `subscription_lost`, `gap_start` is the wall-clock time from which
    data may be missing (the last frame received, or the error); the gap ends at the next
    `synced`.
    """

    kind: EventKind
    at: datetime
    clock: float
    connection: int
    reason: str | None = None
    gap_start: datetime | None = None


@dataclass
class _Outcome:
    reason: str | None = None
    connected_at: float | None = None
    last_frame: float | None = None


Item = DataMessage | ConnectionEvent


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _closed_reason(exc: ConnectionClosed) -> str:
    reason = exc.reason
    if reason is None:
        return "connection closed"
    return f"closed by peer code={reason.code} reason={reason.reason or ''}"


class WSConnectionLike(Protocol):
    """The part of trio_websocket.WebSocketConnection the client uses."""

    async def get_message(self) -> str | bytes: ...

    async def send_message(self, message: str | bytes) -> None: ...


Connector = Callable[[str, list[tuple[bytes, bytes]]], AbstractAsyncContextManager[Any]]


class _Waiter:
    """Slot for the reply to one command."""

    __slots__ = ("error", "event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: Reply | None = None
        self.error: BaseException | None = None

    def set(self, reply: Reply) -> None:
        if not self.event.is_set():
            self.reply = reply
            self.event.set()

    def fail(self, error: BaseException) -> None:
        if not self.event.is_set():
            self.error = error
            self.event.set()


@dataclass
class _Subscription:
    sid: int
    channel: str
    markets: set[str] | None  # None: channel without a market filter


@dataclass
class _Connection:
    """State of one WS session; thrown away on disconnect."""

    ws: WSConnectionLike
    number: int
    last_frame: float
    builder: CommandBuilder = field(default_factory=CommandBuilder)
    pending: dict[int, _Waiter] = field(default_factory=dict)
    subs: dict[str, _Subscription] = field(default_factory=dict)
    rejected: dict[str, float] = field(default_factory=dict)  # ticker -> retry at (trio clock)
    rejected_channels: dict[str, float] = field(default_factory=dict)
    resync_needed: bool = False
    synced_once: bool = False
    terminal_failures: int = 0

    def fail_pending(self, error: BaseException) -> None:
        for waiter in self.pending.values():
            waiter.fail(error)
        self.pending.clear()

    def sub_by_sid(self, sid: int) -> _Subscription | None:
        for sub in self.subs.values():
            if sub.sid == sid:
                return sub
        return None


class KalshiWSClient:
    """Keeps one Kalshi WS connection subscribed to the wanted channels and markets."""

    def __init__(
        self,
        url: str,
        signer: Signer | None,
        *,
        market_channels: Sequence[str] = (TICKER,),
        global_channels: Sequence[str] = (MARKET_LIFECYCLE,),
        batch_size: int = 500,
        reply_timeout: float = 10.0,
        liveness_timeout: float = 30.0,
        liveness_probe: bool = True,
        connect_timeout: float = 15.0,
        disconnect_timeout: float = 5.0,
        backoff: Backoff | None = None,
        stable_after: float = 60.0,
        retry_rejected_after: float = 300.0,
        send_initial_snapshot: bool | None = None,
        queue_size: int = 10_000,
        max_message_size: int = 16 * 1024 * 1024,
        now: Callable[[], datetime] = _utcnow,
        connect: Connector | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if reply_timeout <= 0 or liveness_timeout <= 0:
            raise ValueError("reply_timeout and liveness_timeout must be positive")
        self.url = normalize_ws_url(url)
        self.signer = signer
        self.market_channels = tuple(market_channels)
        self.global_channels = tuple(global_channels)
        self.batch_size = batch_size
        self.reply_timeout = reply_timeout
        self.liveness_timeout = liveness_timeout
        self.liveness_probe = liveness_probe
        self.connect_timeout = connect_timeout
        self.disconnect_timeout = disconnect_timeout
        self.backoff = backoff if backoff is not None else Backoff(base=1.0, cap=60.0, jitter=0.5)
        self.stable_after = stable_after
        self.retry_rejected_after = retry_rejected_after
        self.send_initial_snapshot = send_initial_snapshot
        self.max_message_size = max_message_size
        self.stats = WSStats()
        self._now = now
        self._connect = connect if connect is not None else self._open_websocket
        self._wanted: frozenset[str] = frozenset()
        self._dirty = True
        self._wake = trio.Event()
        self._synced = trio.Event()
        self._conn: _Connection | None = None
        self._send, self._receive = trio.open_memory_channel[Item](queue_size)
        if signer is None:
            log.warning(
                "ws client without credentials url=%s (Kalshi requires a signed handshake)",
                self.url,
            )

    # ---- public API -----------------------------------------------------------------------

    async def set_markets(self, tickers: Iterable[str]) -> None:
        """Declare the market tickers the market channels should cover (the client converges)."""
        await trio.lowlevel.checkpoint()
        wanted = frozenset(tickers)
        if wanted == self._wanted:
            return
        log.info(
            "ws wanted markets changed count=%d added=%d removed=%d",
            len(wanted),
            len(wanted - self._wanted),
            len(self._wanted - wanted),
        )
        self._wanted = wanted
        self._poke()

    @property
    def wanted_markets(self) -> frozenset[str]:
        return self._wanted

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def subscribed_markets(self, channel: str = TICKER) -> frozenset[str]:
        """Markets the current connection holds on `channel`, as acknowledged by the server."""
        conn = self._conn
        sub = conn.subs.get(channel) if conn else None
        return frozenset(sub.markets or ()) if sub else frozenset()

    def subscriptions(self) -> dict[str, int]:
        """channel -> sid on the current connection."""
        conn = self._conn
        return {ch: sub.sid for ch, sub in conn.subs.items()} if conn else {}

    async def wait_synced(self) -> None:
        """Wait until a connection holds the wanted subscriptions (minus markets set aside)."""
        await self._synced.wait()

    async def list_subscriptions(self) -> list[SubscriptionInfo]:
        """Ask the server which subscriptions the current connection has."""
        conn = self._require_conn()
        return await self._list_subscriptions(conn)

    async def receive(self) -> Item:
        """Next data message or connection event."""
        return await self._receive.receive()

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._receive.__aiter__()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve and reconnect forever (until cancelled)."""
        task_status.started()
        failures = 0
        number = 0
        async with self._send:
            while True:
                number += 1
                out = await self._session(number)
                now = trio.current_time()
                if out.connected_at is not None:
                    self.stats.reconnects += 1
                    if self._synced.is_set():
                        self._synced = trio.Event()
                    wall = self._now()
                    last = out.last_frame if out.last_frame is not None else now
                    await self._send.send(
                        ConnectionEvent(
                            "disconnected",
                            wall,
                            now,
                            number,
                            out.reason,
                            gap_start=wall - timedelta(seconds=max(0.0, now - last)),
                        )
                    )
                    if now - out.connected_at >= self.stable_after:
                        failures = 0
                failures += 1
                delay = self.backoff.delay(failures)
                log.warning(
                    "ws disconnected connection=%d reason=%s retry_in=%.2f",
                    number,
                    out.reason,
                    delay,
                )
                await trio.sleep(delay)

    # ---- connection -----------------------------------------------------------------------

    def _require_conn(self) -> _Connection:
        conn = self._conn
        if conn is None:
            raise WSConnectionError("WS not connected")
        return conn

    def _poke(self) -> None:
        self._dirty = True
        if self._synced.is_set():
            self._synced = trio.Event()
        self._wake.set()

    def _handshake_headers(self) -> list[tuple[bytes, bytes]]:
        if self.signer is None:
            return []
        headers = self.signer.headers("GET", self.url)  # fresh timestamp for every connect
        return [(k.encode("ascii"), v.encode("ascii")) for k, v in headers.items()]

    def _open_websocket(
        self, url: str, headers: list[tuple[bytes, bytes]]
    ) -> AbstractAsyncContextManager[Any]:
        return open_websocket_url(
            url,
            extra_headers=headers,
            connect_timeout=self.connect_timeout,
            disconnect_timeout=self.disconnect_timeout,
            max_message_size=self.max_message_size,
            message_queue_size=64,
        )

    async def _session(self, number: int) -> _Outcome:
        """One connection from handshake to drop."""
        out = _Outcome()
        try:
            async with self._connect(self.url, self._handshake_headers()) as ws:
                out.connected_at = trio.current_time()
                conn = _Connection(ws=ws, number=number, last_frame=out.connected_at)
                self._conn = conn
                log.info("ws connected url=%s connection=%d", self.url, number)
                try:
                    await self._send.send(
                        ConnectionEvent("connected", self._now(), out.connected_at, number)
                    )
                    out.reason = await self._serve(conn)
                finally:
                    self._conn = None
                    out.last_frame = conn.last_frame
                    conn.fail_pending(WSConnectionError("WS connection closed"))
        except ConnectionRejected as exc:
            body = (exc.body or b"").decode("utf-8", "replace")
            hint = (
                " (check key id, clock and demo/production host)"
                if exc.status_code in (401, 403)
                else ""
            )
            log.error(
                "ws handshake rejected status=%s body=%r%s",
                exc.status_code,
                shorten(body, 200),
                hint,
            )
            out.reason = out.reason or f"handshake rejected status={exc.status_code}"
        except (HandshakeError, DisconnectionTimeout) as exc:
            cause = exc.__cause__ or exc.__context__
            out.reason = out.reason or f"{type(exc).__name__}: {cause or exc}"
        except (ConnectionClosed, OSError) as exc:
            out.reason = out.reason or f"{type(exc).__name__}: {exc}"
        if out.reason is None:
            out.reason = "connection ended"
        return out

    async def _serve(self, conn: _Connection) -> str:
        reasons: list[str] = []
        async with trio.open_nursery() as nursery:

            def stop(reason: str) -> None:
                if not reasons:
                    reasons.append(reason)
                nursery.cancel_scope.cancel()

            nursery.start_soon(self._reader, conn, stop)
            nursery.start_soon(self._reconciler, conn, stop)
            nursery.start_soon(self._watchdog, conn, stop)
        return reasons[0] if reasons else "stopped"

    async def _reader(self, conn: _Connection, stop: Callable[[str], None]) -> None:
        stats = self.stats
        previous: str | bytes | None = None
        try:
            while True:
                text = await conn.ws.get_message()
                conn.last_frame = trio.current_time()
                if text == previous:
                    # identical consecutive frames carry nothing new (ticker frames hold ts_ms)
                    stats.frames += 1
                    stats.duplicates += 1
                    continue
                previous = text
                message = parse_frame(text, stats)
                if message is None:
                    continue
                if type(message) is DataMessage:
                    await self._send.send(message)
                else:
                    assert isinstance(message, Reply)
                    event = self._on_reply(conn, message)
                    if event is not None:
                        await self._send.send(event)
        except ConnectionClosed as exc:
            stop(_closed_reason(exc))

    def _on_reply(self, conn: _Connection, reply: Reply) -> ConnectionEvent | None:
        waiter = conn.pending.get(reply.id) if reply.id else None
        event = None
        if isinstance(reply, ErrorReply) and reply.terminal:
            event = self._on_terminal(conn, reply)
        if waiter is not None:
            waiter.set(reply)
        elif isinstance(reply, ErrorReply):
            if not reply.terminal:
                log.warning(
                    "ws unsolicited error code=%d msg=%s sid=%s",
                    reply.code,
                    reply.message,
                    reply.sid,
                )
        else:
            log.debug(
                "ws reply without pending command id=%s type=%s", reply.id, type(reply).__name__
            )
        return event

    def _on_terminal(self, conn: _Connection, reply: ErrorReply) -> ConnectionEvent:
        sub = conn.sub_by_sid(reply.sid) if reply.sid is not None else None
        conn.synced_once = False  # announce `synced` again once the subscription is back
        if sub is not None:
            del conn.subs[sub.channel]
            log.warning(
                "ws subscription dropped by server code=%d msg=%s channel=%s sid=%d; resubscribing",
                reply.code,
                reply.message,
                sub.channel,
                sub.sid,
            )
        else:
            log.warning(
                "ws terminal error code=%d msg=%s sid=%s; checking subscriptions",
                reply.code,
                reply.message,
                reply.sid,
            )
            conn.resync_needed = True
        self._poke()
        wall = self._now()
        return ConnectionEvent(
            "subscription_lost",
            wall,
            trio.current_time(),
            conn.number,
            f"code={reply.code} channel={sub.channel if sub else '?'} sid={reply.sid}",
            gap_start=wall,
        )

    async def _watchdog(self, conn: _Connection, stop: Callable[[str], None]) -> None:
        while True:
            deadline = conn.last_frame + self.liveness_timeout
            if trio.current_time() < deadline:
                await trio.sleep_until(deadline)
                continue
            if not self.liveness_probe:
                stop(f"no frame for {self.liveness_timeout:.0f}s")
                return
            try:
                subs = await self._list_subscriptions(conn)
            except WSReplyTimeoutError:
                stop(f"no frame for {self.liveness_timeout + self.reply_timeout:.0f}s")
                return
            except (WSConnectionError, ConnectionClosed):
                return
            except KalshiWSError:
                continue  # an error reply is still a sign of life
            live = {s.sid for s in subs}
            if any(sub.sid not in live for sub in conn.subs.values()):
                log.warning("ws server lost subscriptions; resubscribing")
                conn.resync_needed = True
                self._poke()

    # ---- commands -------------------------------------------------------------------------

    async def _command(self, conn: _Connection, command: WSCommand) -> Reply:
        waiter = _Waiter()
        conn.pending[command.id] = waiter
        try:
            await conn.ws.send_message(command.to_json())
            with trio.move_on_after(self.reply_timeout):
                await waiter.event.wait()
        finally:
            conn.pending.pop(command.id, None)
        if not waiter.event.is_set():
            raise WSReplyTimeoutError(
                f"no reply to {command.cmd} id={command.id} within {self.reply_timeout}s"
            )
        if waiter.error is not None:
            raise waiter.error
        reply = waiter.reply
        assert reply is not None
        if isinstance(reply, ErrorReply):
            raise reply.to_exception()
        return reply

    async def _list_subscriptions(self, conn: _Connection) -> list[SubscriptionInfo]:
        reply = await self._command(conn, conn.builder.list_subscriptions())
        if isinstance(reply, OkReply) and reply.subscriptions is not None:
            return reply.subscriptions
        return []

    # ---- convergence ----------------------------------------------------------------------

    async def _reconciler(self, conn: _Connection, stop: Callable[[str], None]) -> None:
        self._dirty = True  # a new connection starts with no subscriptions
        try:
            while True:
                while self._dirty:
                    self._dirty = False
                    await self._converge(conn)
                if not self._synced.is_set():
                    self._synced.set()
                if not conn.synced_once:
                    conn.synced_once = True
                    log.info(
                        "ws synced connection=%d markets=%d",
                        conn.number,
                        len(self.subscribed_markets()),
                    )
                    await self._send.send(
                        ConnectionEvent("synced", self._now(), trio.current_time(), conn.number)
                    )
                with trio.move_on_at(self._next_retry(conn)):
                    await self._wake.wait()
                self._wake = trio.Event()
                self._dirty = True
        except ConnectionClosed as exc:
            stop(_closed_reason(exc))
        except WSConnectionError as exc:
            stop(str(exc))
        except KalshiWSError as exc:
            stop(f"unhandled {exc}")

    def _next_retry(self, conn: _Connection) -> float:
        times = list(conn.rejected.values()) + list(conn.rejected_channels.values())
        return min(times) if times else float("inf")

    def _expire_rejections(self, conn: _Connection) -> None:
        now = trio.current_time()
        for table in (conn.rejected, conn.rejected_channels):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]

    def _reject(self, conn: _Connection, tickers: Iterable[str], why: str) -> None:
        until = trio.current_time() + self.retry_rejected_after
        listed = sorted(tickers)
        for ticker in listed:
            conn.rejected[ticker] = until
        if listed:
            log.warning(
                "ws markets rejected count=%d first=%s reason=%s retry_in=%.0fs",
                len(listed),
                listed[0],
                why,
                self.retry_rejected_after,
            )

    async def _converge(self, conn: _Connection) -> None:
        self._expire_rejections(conn)
        if conn.resync_needed:
            await self._resync(conn)
        try:
            for channel in self.global_channels:
                if channel not in conn.subs and channel not in conn.rejected_channels:
                    await self._subscribe(conn, channel, None)
            for channel in self.market_channels:
                if channel not in conn.rejected_channels:
                    await self._converge_channel(conn, channel)
        except WSTooManyRequestsError:
            log.warning("ws command rate exceeded; pausing")
            await trio.sleep(1.0)
            self._dirty = True
        except (WSAlreadySubscribedError, WSUnknownSubscriptionError) as exc:
            log.warning("ws subscription state out of step (%s); resyncing", exc)
            conn.resync_needed = True
            self._dirty = True

    async def _resync(self, conn: _Connection) -> None:
        server = {s.sid: s.channel for s in await self._list_subscriptions(conn)}
        for channel, sub in list(conn.subs.items()):
            if sub.sid not in server:
                del conn.subs[channel]
        known = {sub.sid for sub in conn.subs.values()}
        stray = sorted(sid for sid in server if sid not in known)
        if stray:
            await self._command(conn, conn.builder.unsubscribe(stray))
        conn.resync_needed = False

    async def _subscribe(self, conn: _Connection, channel: str, tickers: list[str] | None) -> None:
        """Subscribe one channel; errors other than rate/state ones put the channel aside."""
        command = conn.builder.subscribe(
            [channel],
            tickers,
            send_initial_snapshot=self.send_initial_snapshot if tickers is not None else None,
        )
        try:
            reply = await self._command(conn, command)
        except (WSTooManyRequestsError, WSAlreadySubscribedError, WSMarketNotFoundError):
            raise
        except KalshiWSError as exc:
            self._dirty = True
            if exc.terminal:
                await self._pause_after_terminal(conn, exc)
            else:
                conn.rejected_channels[channel] = trio.current_time() + self.retry_rejected_after
                log.error(
                    "ws subscribe failed channel=%s error=%s retry_in=%.0fs",
                    channel,
                    exc,
                    self.retry_rejected_after,
                )
            return
        sid = getattr(reply, "sid", None)
        if not isinstance(reply, SubscribedReply | OkReply) or sid is None:
            raise WSConnectionError(f"unexpected reply to subscribe: {shorten(repr(reply))}")
        conn.subs[channel] = _Subscription(
            sid=sid, channel=channel, markets=set(tickers) if tickers is not None else None
        )
        conn.terminal_failures = 0
        log.info(
            "ws subscribed channel=%s sid=%d markets=%s",
            channel,
            sid,
            len(tickers) if tickers is not None else "all",
        )

    async def _subscribe_markets(self, conn: _Connection, channel: str, wanted: list[str]) -> None:
        """Open a market channel with its first batch, setting aside markets the server rejects."""
        first = wanted[: self.batch_size]
        try:
            await self._subscribe(conn, channel, first)
            return
        except WSMarketNotFoundError as exc:
            self._dirty = True
            if exc.market_ticker in first or len(first) == 1:
                self._reject(conn, [exc.market_ticker or first[0]], "market not found")
                return
        # the server did not say which market: find a good one, one at a time
        for ticker in first:
            try:
                await self._subscribe(conn, channel, [ticker])
                return
            except WSMarketNotFoundError:
                self._reject(conn, [ticker], "market not found")

    async def _converge_channel(self, conn: _Connection, channel: str) -> None:
        wanted = self._wanted.difference(conn.rejected)
        sub = conn.subs.get(channel)
        if not wanted:
            if sub is not None:
                await self._unsubscribe(conn, sub)
            return
        if sub is None:
            await self._subscribe_markets(conn, channel, sorted(wanted))
            sub = conn.subs.get(channel)
            if sub is None:
                return
            wanted = self._wanted.difference(conn.rejected)
        assert sub.markets is not None
        # add before delete so the market filter never becomes empty (empty means "all markets")
        for batch in chunks(sorted(wanted - sub.markets), self.batch_size):
            if not await self._add(conn, sub, batch):
                return
        extra = sub.markets - self._wanted.difference(conn.rejected)
        if extra and extra >= sub.markets:
            await self._unsubscribe(conn, sub)
            self._dirty = True
            return
        for batch in chunks(sorted(extra), self.batch_size):
            if not await self._delete(conn, sub, batch):
                return

    async def _unsubscribe(self, conn: _Connection, sub: _Subscription) -> None:
        with contextlib.suppress(WSUnknownSubscriptionError):
            await self._command(conn, conn.builder.unsubscribe([sub.sid]))
        conn.subs.pop(sub.channel, None)
        log.info("ws unsubscribed channel=%s sid=%d", sub.channel, sub.sid)

    async def _update(
        self, conn: _Connection, sub: _Subscription, action: UpdateAction, batch: list[str]
    ) -> Reply | None:
        """One update_subscription; None (and re-plan) when the subscription died meanwhile."""
        try:
            return await self._command(
                conn, conn.builder.update_subscription(sub.sid, action, batch)
            )
        except KalshiWSError as exc:
            if not exc.terminal:
                raise
            self._dirty = True
            conn.subs.pop(sub.channel, None)
            await self._pause_after_terminal(conn, exc)
            return None

    async def _pause_after_terminal(self, conn: _Connection, exc: KalshiWSError) -> None:
        """Back off before resubscribing when our own commands keep meeting terminal errors."""
        conn.terminal_failures += 1
        delay = self.backoff.delay(conn.terminal_failures)
        log.warning(
            "ws command hit terminal error code=%d; resubscribing in %.2fs", exc.code, delay
        )
        await trio.sleep(delay)

    async def _add(self, conn: _Connection, sub: _Subscription, batch: list[str]) -> bool:
        """add_markets for one batch, splitting it when the server rejects an unnamed market."""
        assert sub.markets is not None
        todo = [batch]
        while todo:
            part = todo.pop()
            try:
                reply = await self._update(conn, sub, "add_markets", part)
            except WSMarketNotFoundError as exc:
                if exc.market_ticker in part:
                    self._reject(conn, [exc.market_ticker], "market not found")
                    rest = [t for t in part if t != exc.market_ticker]
                    if rest:
                        todo.append(rest)
                elif len(part) > 1:
                    todo.extend([t] for t in reversed(part))
                else:
                    self._reject(conn, part, "market not found")
                continue
            except (WSTooManyRequestsError, WSUnknownSubscriptionError):
                raise
            except KalshiWSError as exc:
                self._reject(conn, part, str(exc))
                continue
            if reply is None:
                return False
            sub.markets.update(part)
            if isinstance(reply, OkReply) and reply.market_tickers is not None:
                missing = set(part).difference(reply.market_tickers)
                if missing:
                    sub.markets.difference_update(missing)
                    self._reject(conn, missing, "absent from the server's market list")
        return True

    async def _delete(self, conn: _Connection, sub: _Subscription, batch: list[str]) -> bool:
        """delete_markets for one batch."""
        assert sub.markets is not None
        try:
            reply = await self._update(conn, sub, "delete_markets", batch)
        except (WSTooManyRequestsError, WSUnknownSubscriptionError):
            raise
        except KalshiWSError as exc:
            log.error("ws delete_markets failed sid=%d error=%s; resyncing", sub.sid, exc)
            conn.resync_needed = True
            self._dirty = True
            return False
        if reply is None:
            return False
        sub.markets.difference_update(batch)
        return True


@asynccontextmanager
async def open_ws_client(
    url: str, signer: Signer | None, **options: Any
) -> AsyncIterator[KalshiWSClient]:
    """Run a KalshiWSClient in the background for the duration of the block."""
    client = KalshiWSClient(url, signer, **options)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
