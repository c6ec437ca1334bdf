"""The receive side: WS items into rows in the buffer, connection events into gap records."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import trio

from ingestor.kalshi.ws import ConnectionEvent, Item, KalshiWSClient
from ingestor.kalshi.ws_protocol import TICKER, DataMessage, Ticker
from ingestor.stream.buffer import StreamBuffer
from ingestor.stream.gaps import GapTracker
from ingestor.stream.rows import (
    LIFECYCLE_TYPES,
    Received,
    UnusableTick,
    build_lifecycle,
    build_tick,
    lifecycle_key,
    us_to_datetime,
)
from ingestor.stream.sharding import Shard
from ingestor.stream.stats import StreamStats
from ingestor.stream.writer import StreamWriter

log = logging.getLogger(__name__)

# Items handled per burst before yielding to the other tasks.
DRAIN_BURST = 500
# Pause after a burst so the next one gathers; bounds the added latency.
GATHER_SECONDS = 0.005
# How long the shutdown drain waits for one more item already inside the client.
DRAIN_WAIT_SECONDS = 0.05
_LOG_FIRST = 10
_LOG_EVERY = 1000


class Receiver:
    """Consumes the client's items: ticks and this shard's lifecycle rows go to the buffer."""

    def __init__(
        self,
        client: KalshiWSClient,
        shard: Shard,
        buffer: StreamBuffer,
        writer: StreamWriter,
        tracker: GapTracker,
        stats: StreamStats,
        *,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.client = client
        self.shard = shard
        self.buffer = buffer
        self.writer = writer
        self.tracker = tracker
        self.stats = stats
        self.clock = clock
        self._last_data_us: int | None = None
        self._last_tick_us: int | None = None
        self._connected_at: datetime | None = None

    def handle(self, item: Item, received: Received | None = None) -> None:
        """Route one item from the client; `received` is shared by a burst of items."""
        if type(item) is DataMessage:
            if received is None:
                received = Received.now(self.clock())
            self._last_data_us = received.us
            kind = item.type
            if kind == TICKER:
                self._tick(item, received)
            elif kind in LIFECYCLE_TYPES:
                self._lifecycle(item, received)
        elif isinstance(item, ConnectionEvent):
            self._connection(item)

    def _tick(self, item: DataMessage, received: Received) -> None:
        body = item.body
        assert isinstance(body, Ticker)
        try:
            row = build_tick(body, item.raw, received)
        except UnusableTick as exc:
            self.stats.unusable_ticks += 1
            n = self.stats.unusable_ticks
            if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
                log.warning("ws ticker message skipped count=%d reason=%s market=%s", n, exc,
                            body.market_ticker[:80])
            return
        self.stats.ticks_received += 1
        self._last_tick_us = row.ts_us
        self.buffer.add_tick(row, body, received.clock)

    def _lifecycle(self, item: DataMessage, received: Received) -> None:
        key = lifecycle_key(item)
        owned = self.shard.owns(key) if key is not None else self.shard.shard_id == 0
        if not owned:
            self.stats.lifecycle_other_shards += 1
            return
        self.stats.lifecycle_received += 1
        self.buffer.add_lifecycle(build_lifecycle(item, received), received.clock)

    def gap_start(self, event: ConnectionEvent) -> datetime:
        """When data may have stopped: the client's gap_start (last frame, or the error), and
        no later than the exchange time of the last tick received before it; without a
        gap_start, the last data seen, but no earlier than the client can take to notice."""
        starts: list[datetime] = [event.at]
        if event.gap_start is not None:
            starts.append(event.gap_start)
        else:
            c = self.client
            noticed_within = timedelta(
                seconds=c.liveness_timeout + c.reply_timeout + c.disconnect_timeout
            )
            evidence = [t for t in (self._last_data_at(), self._connected_at) if t is not None]
            starts.append(max([*evidence, event.at - noticed_within]))
        if self._last_tick_us is not None:
            starts.append(us_to_datetime(self._last_tick_us))
        return min(starts)

    def _last_data_at(self) -> datetime | None:
        return None if self._last_data_us is None else us_to_datetime(self._last_data_us)

    def _connection(self, event: ConnectionEvent) -> None:
        kind = event.kind
        if kind == "connected":
            self._connected_at = event.at
            return
        if kind == "disconnected":
            gaps = self.tracker.disconnected(self.gap_start(event), event.reason, event.at)
            self._connected_at = None
            self._last_data_us = None
        elif kind == "subscription_lost":
            gaps = self.tracker.subscription_lost(
                self.gap_start(event), {"client_reason": event.reason}
            )
        elif kind == "synced":
            gaps = self.tracker.synced(event.at)
        else:
            return
        now = self.clock()
        for gap in gaps:
            self.buffer.add_gap(gap, now)

    async def run(self) -> None:
        """Receive until cancelled, in bursts: after taking what is waiting, pause briefly so
        the next burst gathers (one wake-up and one receive time per burst, not per frame)."""
        source = aiter(self.client)
        nowait: Callable[[], Item] | None = getattr(source, "receive_nowait", None)
        while True:
            try:
                item = await anext(source)
            except StopAsyncIteration:
                return
            received = Received.now(self.clock())
            self.handle(item, received)
            taken = 1
            if nowait is not None:
                while taken < DRAIN_BURST:
                    try:
                        item = nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    self.handle(item, received)
                    taken += 1
            self.writer.poke()
            if nowait is not None and taken < DRAIN_BURST:
                await trio.sleep(GATHER_SECONDS)

    async def drain(self) -> int:
        """At shutdown: take what the client already received (its run task is stopped)."""
        n = 0
        while True:
            with trio.move_on_after(DRAIN_WAIT_SECONDS):
                try:
                    item = await self.client.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return n
                self.handle(item)
                self.writer.poke()
                n += 1
                continue
            return n
