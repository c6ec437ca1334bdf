"""Fan-out of ticks and lifecycle messages to the WS subscriptions that want them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ingestor.sim.exchange import Emission, Exchange
from ingestor.sim.faults import Faults
from ingestor.sim.model import Tick
from ingestor.sim.wire import dumps, ticker_json, trade_msg
from ingestor.sim.ws_conn import WsConn
from ingestor.sim.ws_protocol import (
    LIFECYCLE,
    TICKER,
    TRADE,
    Subscription,
    SubscriptionView,
    subscription_error_frame,
)

log = logging.getLogger(__name__)

DEFAULT_BUFFER_LIMIT = 32 * 1024 * 1024


class Hub:
    """Open WS connections and the delivery of data frames to their subscriptions."""

    def __init__(
        self, exchange: Exchange, faults: Faults, buffer_limit: int = DEFAULT_BUFFER_LIMIT
    ) -> None:
        self.ex = exchange
        self.faults = faults
        self.buffer_limit = buffer_limit
        self.conns: dict[int, WsConn] = {}
        self.data_frames = 0
        self.connections_total = 0
        faults.attach(self)

    def add(self, conn: WsConn) -> None:
        """Start delivering to a connection."""
        self.conns[conn.conn_id] = conn
        self.connections_total += 1

    def discard(self, conn: WsConn) -> None:
        """Stop delivering to a connection."""
        self.conns.pop(conn.conn_id, None)

    def subscriptions(self) -> dict[int, list[SubscriptionView]]:
        """Subscriptions per open connection id."""
        return {cid: c.session.views() for cid, c in self.conns.items() if not c.closed}

    def drop_all(self) -> int:
        """Cut every connection without a close frame."""
        conns = [c for c in self.conns.values() if not c.closed]
        for c in conns:
            c.abort()
        return len(conns)

    def fail_subscriptions(self, code: int, channel: str) -> int:
        """Send error `code` on each subscription of `channel` and drop it server-side."""
        n = 0
        for c in list(self.conns.values()):
            for sub in list(c.session.by_channel.get(channel, ())):
                self._kill(c, sub, code)
                n += 1
        return n

    def _kill(self, conn: WsConn, sub: Subscription, code: int) -> None:
        conn.session.remove(sub.sid)
        conn.push_text(subscription_error_frame(sub, code))
        log.info("ws subscription ended conn=%d sid=%d code=%d", conn.conn_id, sub.sid, code)

    def _deliver(self, conn: WsConn, sub: Subscription, text: str) -> None:
        if self.faults.frames_armed:
            fault = self.faults.take_frame()
            if fault == "drop":
                return
            if fault == "malformed":
                text = text[: len(text) // 2]
            elif fault == "duplicate":
                conn.push_text(text)
        if conn.pending > self.buffer_limit:
            self._kill(conn, sub, 25)
            return
        conn.push_text(text)
        self.data_frames += 1

    def dispatch(self, items: Iterable[Emission]) -> None:
        """Send each tick / lifecycle message to every matching subscription, in order."""
        conns = [c for c in self.conns.values() if c.session.subs and not c.closed]
        if not conns:
            return
        legacy = self.ex.legacy
        for item in items:
            if isinstance(item, Tick):
                body = None
                for c in conns:
                    for sub in tuple(c.session.by_channel[TICKER]):
                        if sub.markets is None or item.ticker in sub.markets:
                            if body is None:
                                body = ticker_json(item, legacy)
                            self._deliver(
                                c, sub, f'{{"type":"ticker","sid":{sub.sid},"msg":{body}}}'
                            )
                trade = item.trade
                if trade is not None:
                    body = None
                    for c in conns:
                        for sub in tuple(c.session.by_channel[TRADE]):
                            if sub.markets is None or item.ticker in sub.markets:
                                if body is None:
                                    body = dumps(trade_msg(trade, legacy))
                                self._deliver(
                                    c, sub, f'{{"type":"trade","sid":{sub.sid},"msg":{body}}}'
                                )
            else:
                body = dumps(item.msg)
                for c in conns:
                    for sub in tuple(c.session.by_channel[LIFECYCLE]):
                        self._deliver(
                            c, sub, f'{{"type":"{item.type}","sid":{sub.sid},"msg":{body}}}'
                        )
