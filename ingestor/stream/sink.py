"""One batch, one transaction: gaps, ticks, quotes, lifecycle rows and freshness together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from ingestor.db import ingest_state, lifecycle, ticks, ws_gaps
from ingestor.db.connect import Database
from ingestor.stream.buffer import Batch
from ingestor.stream.freshness import LAST_TICK_TS, LAST_WS_TICK_TS, StateUpdate
from ingestor.stream.sharding import Shard

log = logging.getLogger(__name__)

ROLE = "ws"


@dataclass(frozen=True, slots=True)
class SinkResult:
    """What a committed batch stored."""

    ticks_inserted: int
    ticks_duplicate: int
    ticks_rejected: tuple[int, ...]
    lifecycle_inserted: int
    lifecycle_rejected: tuple[int, ...]
    path: str


def write_batch(
    conn: psycopg.Connection,
    batch: Batch,
    state: StateUpdate | None,
    shard: Shard,
    strategy: ticks.Strategy = "copy",
) -> SinkResult:
    """Write a whole batch in one transaction (the state keys only describe rows in it or
    committed before it)."""
    with conn.transaction():
        if batch.gaps:
            ws_gaps.upsert_many(conn, shard.shard_id, shard.count, batch.gaps)
        result = ticks.write_ticks(conn, [r.line for r in batch.ticks], strategy)
        if batch.quotes:
            try:
                with conn.transaction():
                    ticks.upsert_quotes(conn, batch.quotes)
            except psycopg.DataError as exc:
                log.error("quotes not updated for this batch error=%s", str(exc).splitlines()[0])
        lc_inserted, lc_rejected = lifecycle.insert_events(conn, batch.lifecycle)
        if state is not None:
            ingest_state.write(conn, LAST_TICK_TS, state.last_tick_ts, ROLE)
            ingest_state.write(conn, LAST_WS_TICK_TS, state.last_ws_tick_ts, ROLE)
    return SinkResult(
        result.inserted, result.duplicates, result.rejected, lc_inserted, lc_rejected, result.path
    )


class DatabaseSink:
    """Writes batches through `Database.run` (one worker-thread hop per batch)."""

    def __init__(self, db: Database, shard: Shard, strategy: ticks.Strategy = "copy") -> None:
        self.db = db
        self.shard = shard
        self.strategy = strategy

    async def __call__(self, batch: Batch, state: StateUpdate | None) -> SinkResult:
        return await self.db.run(write_batch, batch, state, self.shard, self.strategy)
