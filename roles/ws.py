"""The ws role: live ticks and lifecycle events for this shard's markets, batched, gap-aware.

Loops (one nursery): the WS client, the subscription refresh (active_markets -> wanted
markets), the receiver (items -> bounded buffer, connection events -> gaps), the writer
(buffer -> database in batches) and the stats reporter. On SIGTERM the loops
are cancelled and everything received is flushed under a shielded deadline.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import trio

from ingestor.config import WsSettings
from ingestor.db import ws_gaps
from ingestor.db.connect import Database
from ingestor.stream.buffer import StreamBuffer
from ingestor.stream.client import build_client
from ingestor.stream.gaps import GapTracker
from ingestor.stream.receiver import Receiver
from ingestor.stream.report import format_line, report_loop, snapshot
from ingestor.stream.sharding import Shard
from ingestor.stream.sink import DatabaseSink
from ingestor.stream.stats import StreamStats
from ingestor.stream.subscriptions import SubscriptionRefresher
from ingestor.stream.writer import StreamWriter

log = logging.getLogger(__name__)

class WsRole:
    """The role's pieces, wired together; `run` until cancelled."""

    def __init__(self, settings: WsSettings, db: Database, **client_options: Any) -> None:
        self.settings = settings
        self.db = db
        self.client = build_client(settings, **client_options)
        self.shard = Shard(settings.ws_shard_id, settings.ws_shard_count)
        self.stats = StreamStats()
        self.buffer = StreamBuffer(settings.ws_queue_maxsize)
        self.writer = StreamWriter(
            self.buffer, DatabaseSink(db, self.shard), batch_size=settings.ws_db_batch_size,
            flush_seconds=settings.ws_db_flush_seconds, stats=self.stats,
        )
        self.tracker = GapTracker(lambda: self.client.wanted_markets)
        self.receiver = Receiver(
            self.client, self.shard, self.buffer, self.writer, self.tracker, self.stats
        )
        self.refresher = SubscriptionRefresher(
            db, self.client, self.shard, settings.max_active_tickers,
            settings.ws_sub_refresh_seconds,
        )

    def snapshot(self) -> dict[str, Any]:
        """Counters for logs and tests."""
        return snapshot(self.stats, self.buffer, self.client)

    async def run(self) -> None:
        """Run the loops until cancelled; flush everything received before returning."""
        s, shard = self.settings, self.shard
        left_open = await self.db.run(ws_gaps.open_gaps, shard.shard_id, shard.count)
        log.info("ws role starting shard=%s url=%s batch=%d flush=%.3fs queue=%d cap=%d",
                 shard, self.client.url, s.ws_db_batch_size, s.ws_db_flush_seconds,
                 s.ws_queue_maxsize, s.max_active_tickers)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.refresher.run)
                for gap in self.tracker.start(datetime.now(UTC), left_open):
                    self.buffer.add_gap(gap, trio.current_time())
                nursery.start_soon(self.writer.run)
                nursery.start_soon(self.receiver.run)
                nursery.start_soon(self.client.run)
                nursery.start_soon(report_loop, self.stats, self.buffer, self.client)
        finally:
            await self.shutdown()
            log.info("ws role stopped %s", format_line(self.snapshot()))

    async def shutdown(self) -> bool:
        """Drain the client, open the shutdown gap and flush, within WS_SHUTDOWN_FLUSH_SECONDS."""
        done = False
        limit = self.settings.ws_shutdown_flush_seconds
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + limit
            drained = await self.receiver.drain()
            for gap in self.tracker.shutdown(datetime.now(UTC)):
                self.buffer.add_gap(gap, trio.current_time())
            log.info("ws flushing before exit pending=%d inflight=%d drained=%d",
                     self.buffer.pending, self.buffer.inflight, drained)
            try:
                done = await self.writer.flush_all()
            except Exception:  # whatever stops the flush must not hide why the role stopped
                log.exception("ws shutdown flush failed")
        if not done:
            log.error("ws shutdown flush incomplete after %.0fs: lost pending=%d inflight=%d",
                      limit, self.buffer.pending, self.buffer.inflight)
        return done


async def main(settings: WsSettings, db: Database) -> None:
    """Entry point for `ingestor role ws`."""
    await WsRole(settings, db).run()
