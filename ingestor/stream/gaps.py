"""Which windows the shard could not see ticks in, from connection and subscription events.

Pure: events in, gap records (full state, keyed by reason and start) out. Ticker and lifecycle
frames carry no sequence numbers, so a disconnection IS the gap signal; the rest role and the
portal read the recorded windows.

- startup: from process start (or an earlier run's still-open gaps) until first subscribed
- disconnected / stale: from the drop until the new connection holds its subscriptions
- subscription_lost: a terminal error (e.g. 25, slow reader) ended a subscription; until
  the client has resubscribed
- shutdown: opened at exit, closed by the next start
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from ingestor.db.ws_gaps import (
    DISCONNECTED,
    SHUTDOWN,
    STALE,
    STARTUP,
    SUBSCRIPTION_LOST,
    GapRecord,
)

log = logging.getLogger(__name__)

STALE_PREFIX = "no frame for"


def disconnect_reason(client_reason: str | None) -> str:
    """'stale' when the client gave up on a silent connection, else 'disconnected'."""
    if client_reason and client_reason.startswith(STALE_PREFIX):
        return STALE
    return DISCONNECTED


class GapTracker:
    """Open gaps of one shard; every method returns the records to write."""

    def __init__(self, wanted: Callable[[], Iterable[str]]) -> None:
        self._wanted = wanted
        self._open: dict[tuple[str, datetime], GapRecord] = {}

    @property
    def open(self) -> list[GapRecord]:
        """Gaps not closed yet."""
        return list(self._open.values())

    def _markets(self, extra: Iterable[str] = ()) -> tuple[str, ...]:
        return tuple(sorted(set(self._wanted()) | set(extra)))

    def _put(self, gap: GapRecord) -> GapRecord:
        self._open[(gap.reason, gap.started_at)] = gap
        log.warning("ws gap opened reason=%s since=%s markets=%d", gap.reason,
                    gap.started_at.isoformat(), len(gap.markets))
        return gap

    def start(self, at: datetime, left_open: Iterable[GapRecord] = ()) -> list[GapRecord]:
        """Adopt gaps an earlier run left open; without any, open a startup gap."""
        for gap in left_open:
            self._open[(gap.reason, gap.started_at)] = gap
        if self._open:
            log.info("ws adopting gaps left open count=%d oldest=%s", len(self._open),
                     min(g.started_at for g in self._open.values()).isoformat())
            return []
        return [self._put(GapRecord(STARTUP, at, None, self._markets()))]

    def disconnected(
        self, since: datetime, client_reason: str | None, detected_at: datetime | None = None
    ) -> list[GapRecord]:
        """The connection dropped (or was replaced for silence); `since` is when it may have
        stopped delivering, `detected_at` when the client gave up on it."""
        reason = disconnect_reason(client_reason)
        if any(r in (DISCONNECTED, STALE) for r, _ in self._open):
            return []
        detail: dict[str, Any] = {}
        if client_reason:
            detail["client_reason"] = client_reason
        if detected_at is not None:
            detail["detected_at"] = detected_at.isoformat()
        return [self._put(GapRecord(reason, since, None, self._markets(), 0, detail or None))]

    def subscription_lost(self, since: datetime, detail: dict[str, Any]) -> list[GapRecord]:
        """A terminal error (e.g. 25, slow reader) ended a subscription; data may be missing
        from `since` until the client has resubscribed (its next `synced`)."""
        if any(r == SUBSCRIPTION_LOST for r, _ in self._open):
            return []
        return [self._put(GapRecord(SUBSCRIPTION_LOST, since, None, self._markets(), 0, detail))]

    def synced(self, at: datetime, *, reasons: Iterable[str] | None = None) -> list[GapRecord]:
        """Subscriptions are in place again: close open gaps (all, or those of `reasons`)."""
        wanted = set(reasons) if reasons is not None else None
        closed: list[GapRecord] = []
        for key, gap in list(self._open.items()):
            if wanted is not None and gap.reason not in wanted:
                continue
            end = max(at, gap.started_at)
            done = replace(gap, ended_at=end, markets=self._markets(gap.markets))
            del self._open[key]
            closed.append(done)
            log.info("ws gap closed reason=%s since=%s until=%s seconds=%.3f markets=%d",
                     done.reason, done.started_at.isoformat(), end.isoformat(),
                     (end - done.started_at).total_seconds(), len(done.markets))
        return closed

    def shutdown(self, at: datetime) -> list[GapRecord]:
        """Open the gap the next start will close (earlier open gaps stay open too)."""
        return [self._put(GapRecord(SHUTDOWN, at, None, self._markets()))]
