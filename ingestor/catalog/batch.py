"""A page of the API turned into the rows one transaction stores, after the strike filter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingestor.catalog.filters import StrikeFilter
from ingestor.catalog.parse import ParsedEvent, ParsedMarket
from ingestor.catalog.rows import MarketRecord, event_row, market_record, market_row


@dataclass
class CatalogBatch:
    """Rows for events and markets, and the role's view of each kept market."""

    events: list[dict[str, Any]] = field(default_factory=list)
    markets: list[dict[str, Any]] = field(default_factory=list)
    records: list[MarketRecord] = field(default_factory=list)
    filtered_out: int = 0
    orphans: list[str] = field(default_factory=list)  # markets whose event is unknown

    def extend(self, other: CatalogBatch) -> None:
        self.events.extend(other.events)
        self.markets.extend(other.markets)
        self.records.extend(other.records)
        self.filtered_out += other.filtered_out
        self.orphans.extend(other.orphans)


def _add_event(
    batch: CatalogBatch, parsed: ParsedEvent, markets: Sequence[ParsedMarket], strike: StrikeFilter
) -> None:
    period = strike.classify(parsed.event, [m.market for m in markets])
    if period is None:
        batch.filtered_out += 1
        return
    e = parsed.event
    batch.events.append(event_row(parsed))
    for pm in markets:
        batch.markets.append(market_row(pm, e.event_ticker))
        batch.records.append(market_record(pm.market, e.event_ticker, e.series_ticker, period))


def build_batch(events: Sequence[ParsedEvent], strike: StrikeFilter) -> CatalogBatch:
    """Rows for the events (with nested markets) that pass the strike filter."""
    batch = CatalogBatch()
    for parsed in events:
        _add_event(batch, parsed, parsed.markets, strike)
    return batch


def build_market_batch(
    markets: Sequence[ParsedMarket],
    events: Mapping[str, ParsedEvent],
    strike: StrikeFilter,
) -> CatalogBatch:
    """Rows for markets listed on their own (e.g. /historical/markets), grouped by event."""
    batch = CatalogBatch()
    grouped: dict[str, list[ParsedMarket]] = {}
    for pm in markets:
        event_ticker = pm.market.event_ticker
        if not event_ticker or event_ticker not in events:
            batch.orphans.append(pm.market.ticker)
            continue
        grouped.setdefault(event_ticker, []).append(pm)
    for event_ticker, members in grouped.items():
        _add_event(batch, events[event_ticker], members, strike)
    return batch
