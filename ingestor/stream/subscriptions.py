"""Keeps the WS client's wanted markets equal to this shard's active markets (capped)."""

from __future__ import annotations

import logging

import psycopg
import trio

from ingestor.db import active_markets_read
from ingestor.db.connect import Database
from ingestor.kalshi.ws import KalshiWSClient
from ingestor.stream.selection import Candidate, select_markets
from ingestor.stream.sharding import Shard
from ingestor.stream.writer import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


class SubscriptionRefresher:
    """Every WS_SUB_REFRESH_SECONDS: read active_markets, keep this shard's, cap, declare."""

    def __init__(
        self, db: Database, client: KalshiWSClient, shard: Shard, cap: int, interval: float
    ) -> None:
        self.db = db
        self.client = client
        self.shard = shard
        self.cap = cap
        self.interval = interval
        self._owned: dict[str, bool] = {}
        self._capped = False

    def owned(self, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates this shard owns (hash results cached per ticker)."""
        cache = self._owned
        fresh: dict[str, bool] = {}
        out: list[Candidate] = []
        for c in candidates:
            mine = cache.get(c.ticker)
            if mine is None:
                mine = self.shard.owns(c.ticker)
            fresh[c.ticker] = mine
            if mine:
                out.append(c)
        self._owned = fresh
        return out

    async def refresh_once(self) -> frozenset[str] | None:
        """One refresh; None when active_markets could not be read (subscriptions unchanged)."""
        try:
            candidates = await self.db.run(active_markets_read.candidates)
        except (*TRANSIENT_ERRORS, psycopg.Error) as exc:
            log.warning("ws cannot read active_markets; keeping current subscriptions error=%s",
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
            return None
        owned = self.owned(candidates)
        selected = select_markets(owned, self.client.wanted_markets, self.cap)
        capped = len(owned) > len(selected)
        if capped and not self._capped:
            log.warning("ws shard has more markets than MAX_ACTIVE_TICKERS shard=%s owned=%d "
                        "cap=%d (keeping the soonest-closing)", self.shard, len(owned), self.cap)
        self._capped = capped
        await self.client.set_markets(selected)
        return selected

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Refresh now (then report started) and every interval after."""
        selected = await self.refresh_once()
        log.info("ws shard=%s markets=%s", self.shard,
                 "unknown" if selected is None else len(selected))
        task_status.started()
        while True:
            await trio.sleep(self.interval)
            await self.refresh_once()
