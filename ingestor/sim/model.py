"""State records of the simulated exchange: series, events, markets, quote books, ticks, trades."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# REST response statuses, in lifecycle order.
INITIALIZED = "initialized"
ACTIVE = "active"
INACTIVE = "inactive"
CLOSED = "closed"
DETERMINED = "determined"
FINALIZED = "finalized"

# Query filter value -> response statuses it matches (Kalshi semantics).
STATUS_FILTERS: dict[str, frozenset[str]] = {
    "unopened": frozenset({INITIALIZED}),
    "open": frozenset({ACTIVE}),
    "paused": frozenset({INACTIVE}),
    "closed": frozenset({CLOSED, DETERMINED, "disputed", "amended"}),
    "settled": frozenset({FINALIZED}),
}


class Trade(NamedTuple):
    """One execution; prices in cents, counts in hundredths of a contract."""

    trade_id: str
    ticker: str
    ts_ms: int
    yes_price: int
    count_cc: int
    taker_outcome_side: str


class Tick(NamedTuple):
    """The full ticker state of one market right after a change; one WS ticker frame."""

    ticker: str
    market_id: str
    ts_ms: int
    yes_bid: int
    yes_ask: int
    bid_size_cc: int
    ask_size_cc: int
    price: int
    last_trade_cc: int
    volume_cc: int
    oi_cc: int
    notional: int
    trade: Trade | None


@dataclass(slots=True)
class Book:
    """A market's live quote and activity state; prices in cents, counts in hundredths."""

    mid: float = 50.0
    yes_bid: int = 0
    yes_ask: int = 100
    bid_size_cc: int = 0
    ask_size_cc: int = 0
    last_price: int = 0
    last_trade_cc: int = 0
    volume_cc: int = 0
    oi_cc: int = 0
    notional: int = 0  # sum of price_cents * count_cc over all trades


@dataclass(slots=True, eq=False)
class Series:
    """A series: a template that events are instances of."""

    ticker: str
    title: str
    category: str
    frequency: str
    tags: list[str]
    strike_period: str | None
    period_s: int | None
    offset_s: int
    markets_per_event: int
    kind: str  # greater | between | custom
    strike_base: float
    strike_step: float
    unit: str
    created_ts: int
    updated_ts: int


@dataclass(slots=True, eq=False)
class Event:
    """An event: a question with one or more markets."""

    event_ticker: str
    series_ticker: str
    seq: int
    title: str
    sub_title: str
    strike_date: int | None
    strike_period: str | None
    mutually_exclusive: bool
    collateral_return_type: str
    created_ts: int
    updated_ts: int
    close_ts: int
    market_tickers: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Market:
    """A binary market with its lifecycle plan, live book and full tick history."""

    ticker: str
    event_ticker: str
    series_ticker: str
    market_id: str
    seq: int
    title: str
    yes_sub_title: str
    no_sub_title: str
    rules_primary: str
    rules_secondary: str
    strike_type: str
    floor_strike: float | None
    cap_strike: float | None
    custom_strike: dict[str, str] | None
    created_ts: int
    updated_ts: int
    open_ts: int
    close_ts: int
    expected_expiration_ts: int
    latest_expiration_ts: int
    can_close_early: bool
    fractional: bool
    outcome: str  # result decided at creation, revealed at determination
    determine_delay_s: int
    settle_delay_s: int
    status: str = INITIALIZED
    result: str = ""
    determination_ts: int | None = None
    settled_ts: int | None = None
    close_version: int = 0
    historical: bool = False
    last_tick: Tick | None = None
    book: Book = field(default_factory=Book)
    ticks: list[Tick] = field(default_factory=list)
    tick_ms: list[int] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)

    @property
    def last_tick_ms(self) -> int:
        """Timestamp of the latest tick, or -1 when the market never ticked."""
        return self.last_tick.ts_ms if self.last_tick is not None else -1


@dataclass(frozen=True, slots=True)
class Transition:
    """A status change, with or without a WS lifecycle message."""

    ts: int
    ticker: str
    old: str
    new: str
