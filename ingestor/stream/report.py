"""Periodic one-line reports of the ws role: throughput, buffer, drops, gaps, latency.

INFO every STATS_LOG_SECONDS; with LOG_LEVEL=DEBUG also a short progress line whenever the
received counts changed (at most every PROGRESS_SECONDS).
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ingestor.kalshi.ws import KalshiWSClient
from ingestor.stream.buffer import StreamBuffer
from ingestor.stream.stats import StreamStats

log = logging.getLogger(__name__)

STATS_LOG_SECONDS = 30.0
PROGRESS_SECONDS = 0.5


def snapshot(
    stats: StreamStats, buffer: StreamBuffer, client: KalshiWSClient, *, window: bool = False
) -> dict[str, Any]:
    """Counters as a flat dict; latency since start, or since the last report with window."""
    c = buffer.counters
    ws = client.stats
    hist = stats.window if window else stats.latency
    p50 = hist.percentile(50)
    p99 = hist.percentile(99)
    return {
        "received": stats.ticks_received,
        "lifecycle": stats.lifecycle_received,
        "written": stats.ticks_written,
        "already_stored": stats.ticks_already_stored,
        "lifecycle_written": stats.lifecycle_written,
        "pending": buffer.pending,
        "inflight": buffer.inflight,
        "duplicates": c.duplicates + ws.duplicates,
        "dropped": c.dropped_ticks,
        "dropped_lifecycle": c.dropped_lifecycle,
        "unusable": stats.unusable_ticks,
        "malformed": ws.malformed,
        "reconnects": ws.reconnects,
        "batches": stats.batches,
        "batch_errors": stats.batch_errors,
        "gaps": stats.gaps_recorded,
        "latency_p50_ms": None if p50 is None else round(p50, 1),
        "latency_p99_ms": None if p99 is None else round(p99, 1),
        "latency_max_ms": round(hist.max_ms, 1),
        "subscribed": len(client.subscribed_markets()),
    }


def format_line(values: dict[str, Any]) -> str:
    """key=value pairs in a stable order."""
    return " ".join(f"{k}={v}" for k, v in values.items())


async def report_loop(
    stats: StreamStats,
    buffer: StreamBuffer,
    client: KalshiWSClient,
    *,
    interval: float = STATS_LOG_SECONDS,
    progress: float = PROGRESS_SECONDS,
) -> None:
    """Log stats every `interval` and, at DEBUG, progress when it changed."""
    next_stats = trio.current_time() + interval
    last_progress: tuple[int, int] | None = None
    while True:
        await trio.sleep(progress)
        if log.isEnabledFor(logging.DEBUG):
            current = (stats.ticks_received, stats.lifecycle_received)
            if current != last_progress:
                last_progress = current
                log.debug("ws progress received=%d lifecycle=%d written=%d pending=%d",
                          stats.ticks_received, stats.lifecycle_received, stats.ticks_written,
                          buffer.pending)
        if trio.current_time() >= next_stats:
            next_stats += interval
            log.info("ws stats %s", format_line(snapshot(stats, buffer, client, window=True)))
            stats.window.reset()
