"""Market status changes from market_lifecycle_v2 messages, folded into one patch per market.

Rules: a decided market (determined or settled) is never re-opened by a later pause,
reactivation or close-time message; determination and settlement take a market out of
active_markets; messages of one market apply in the order they were stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

# Statuses after a result is known (REST names and the older family names).
DECIDED_STATUSES = frozenset({"determined", "disputed", "amended", "finalized", "settled"})


@dataclass(frozen=True)
class LifecycleRow:
    """One stored market_lifecycle_v2 message, with the stored market's current status."""

    id: int
    market_ticker: str
    event_type: str
    received_at: datetime
    close_ts: datetime | None
    settled_ts: datetime | None
    result: str | None
    settlement_value_dollars: Decimal | None
    is_deactivated: bool | None
    market_status: str | None


@dataclass(frozen=True)
class MarketPatch:
    """A change to one market from lifecycle messages (None: leave the column alone)."""

    ticker: str
    as_of: datetime
    status: str | None = None
    result: str | None = None
    settlement_value_dollars: Decimal | None = None
    settlement_ts: datetime | None = None
    close_time: datetime | None = None
    leaves_active: bool = False  # determined or settled: out of active_markets
    active_status: str | None = None  # new active_markets.status (paused / reactivated)

    @property
    def empty(self) -> bool:
        return (
            self.status is None
            and self.result is None
            and self.settlement_value_dollars is None
            and self.settlement_ts is None
            and self.close_time is None
            and not self.leaves_active
        )


def _decided(status: str | None) -> bool:
    return status is not None and status.lower() in DECIDED_STATUSES


def fold_market(rows: Iterable[LifecycleRow]) -> MarketPatch | None:
    """Fold one market's messages (in id order) into a patch, or None when nothing changes."""
    patch: MarketPatch | None = None
    status: str | None = None
    for row in rows:
        if patch is None:
            status = row.market_status
            patch = MarketPatch(ticker=row.market_ticker, as_of=row.received_at)
        kind = row.event_type
        as_of = max(patch.as_of, row.received_at)
        if kind == "settled":
            status = "finalized"
            patch = replace(
                patch,
                as_of=as_of,
                status=status,
                leaves_active=True,
                active_status=None,
                settlement_ts=row.settled_ts or patch.settlement_ts,
            )
        elif kind == "determined":
            if status is None or status.lower() not in {"finalized", "settled"}:
                status = "determined"
            patch = replace(
                patch,
                as_of=as_of,
                status=status,
                leaves_active=True,
                active_status=None,
                result=row.result if row.result is not None else patch.result,
                settlement_value_dollars=(
                    row.settlement_value_dollars
                    if row.settlement_value_dollars is not None
                    else patch.settlement_value_dollars
                ),
            )
        elif kind in ("deactivated", "activated") and not _decided(status):
            paused = (
                row.is_deactivated if row.is_deactivated is not None else (kind == "deactivated")
            )
            status = "inactive" if paused else "active"
            patch = replace(patch, as_of=as_of, status=status, active_status=status)
        elif kind == "close_date_updated" and row.close_ts is not None and not _decided(status):
            patch = replace(patch, as_of=as_of, close_time=row.close_ts)
        else:
            patch = replace(patch, as_of=as_of)
    if patch is None or patch.empty:
        return None
    return patch


def fold(rows: Iterable[LifecycleRow]) -> list[MarketPatch]:
    """One patch per market, markets in order of their first message."""
    grouped: dict[str, list[LifecycleRow]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        grouped.setdefault(row.market_ticker, []).append(row)
    patches = [fold_market(group) for group in grouped.values()]
    return [p for p in patches if p is not None]
