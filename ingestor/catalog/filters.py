"""Which events and markets the rest role keeps: strike periods, horizons, live statuses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ingestor.kalshi.models import Event, Market, market_status_family

# Status families (see kalshi-api.md §3.8) of markets that belong in active_markets.
ACTIVE_FAMILIES = frozenset({"open", "paused"})
# Families after which a market no longer trades.
ENDED_FAMILIES = frozenset({"closed", "settled"})

_ALIASES = {
    "hour": "hour",
    "hourly": "hour",
    "hr": "hour",
    "hrs": "hour",
    "hours": "hour",
    "h": "hour",
    "day": "day",
    "daily": "day",
    "days": "day",
    "d": "day",
    "week": "week",
    "weekly": "week",
    "weeks": "week",
    "w": "week",
    "month": "month",
    "monthly": "month",
    "months": "month",
}
_MINUTES = re.compile(r"^\d+\s*(m|min|mins|minute|minutes)$")


def normalise_strike_period(value: str | None) -> str | None:
    """hour/day/week/month from Kalshi's free text; sub-hourly periods ("15m") count as hour."""
    if value is None:
        return None
    text = value.strip().lower()
    if not text:
        return None
    if text in _ALIASES:
        return _ALIASES[text]
    if _MINUTES.match(text):
        return "hour"
    return text


def is_active_status(status: str | None) -> bool:
    """True for open or paused markets (REST active/inactive, legacy open/paused)."""
    return market_status_family(status) in ACTIVE_FAMILIES


def event_span_hours(event: Event, markets: Sequence[Market]) -> float | None:
    """Hours from the earliest market open to the latest close (or the event's strike date)."""
    opens = [m.open_time for m in markets if m.open_time is not None]
    closes: list[datetime] = [m.close_time for m in markets if m.close_time is not None]
    if not closes and event.strike_date is not None:
        closes = [event.strike_date]
    if not opens or not closes:
        return None
    return (max(closes) - min(opens)).total_seconds() / 3600.0


@dataclass(frozen=True)
class StrikeFilter:
    """STRIKE_PERIODS plus the optional horizons for events without a strike period."""

    periods: frozenset[str]
    hour_max_hours: float | None = None
    day_max_hours: float | None = None

    @classmethod
    def of(
        cls,
        periods: Iterable[str],
        hour_max_hours: float | None = None,
        day_max_hours: float | None = None,
    ) -> StrikeFilter:
        normalised = {normalise_strike_period(p) for p in periods}
        return cls(frozenset(p for p in normalised if p), hour_max_hours, day_max_hours)

    def classify(self, event: Event, markets: Sequence[Market]) -> str | None:
        """The strike period the event is kept under, or None when it is filtered out."""
        period = normalise_strike_period(event.strike_period)
        if period is not None:
            return period if period in self.periods else None
        span = event_span_hours(event, markets)
        if span is None or span < 0:
            return None
        for name, limit in (("hour", self.hour_max_hours), ("day", self.day_max_hours)):
            if name in self.periods and limit is not None and span <= limit:
                return name
        return None
