"""Lenient parsing of API records: a bad field is dropped (kept in raw), a bad record is skipped.

The strict models in `ingestor.kalshi.models` reject a whole record for one malformed field.
Here a record is stored with what it has: fields that fail validation are removed and the
record is validated again; only a record without a usable natural key is rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ingestor.kalshi.models import Candlestick, Event, Market

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

_MAX_ROUNDS = 4


@dataclass(frozen=True)
class ParseProblem:
    """One record, or one field of a record, that could not be used."""

    kind: str  # event | market | candle
    key: str | None
    reason: str
    fatal: bool  # True: the record was skipped; False: only `fields` were dropped
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedMarket:
    market: Market
    raw: dict[str, Any]


@dataclass(frozen=True)
class ParsedEvent:
    event: Event
    raw: dict[str, Any]  # the payload without its nested `markets`
    markets: list[ParsedMarket] = field(default_factory=list)


@dataclass(frozen=True)
class ParsedCandle:
    candle: Candlestick
    invalid: dict[str, Any]  # fields dropped as invalid, with their raw values


@dataclass
class ParseReport:
    """Problems met while parsing one page or response."""

    problems: list[ParseProblem] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(1 for p in self.problems if p.fatal)

    @property
    def degraded(self) -> int:
        return sum(1 for p in self.problems if not p.fatal)

    def add(self, problem: ParseProblem) -> None:
        self.problems.append(problem)
        level = logging.WARNING if problem.fatal else logging.INFO
        log.log(
            level,
            "record %s kind=%s key=%s fields=%s reason=%s",
            "skipped" if problem.fatal else "degraded",
            problem.kind,
            problem.key,
            ",".join(problem.fields) or "-",
            problem.reason[:200],
        )


def _key_of(raw: Mapping[str, Any], key_field: str) -> str | None:
    value = raw.get(key_field)
    return value if isinstance(value, str) and value else None


def validate_lenient(
    model: type[M], raw: Any, key_field: str, kind: str, report: ParseReport
) -> M | None:
    """Validate `raw`, dropping top-level fields that fail; None when the key is unusable."""
    if not isinstance(raw, Mapping):
        report.add(ParseProblem(kind, None, f"not an object ({type(raw).__name__})", True))
        return None
    key = _key_of(raw, key_field)
    if key is None:
        report.add(ParseProblem(kind, None, f"missing or empty {key_field}", True))
        return None
    data = dict(raw)
    dropped: list[str] = []
    reason = ""
    for _ in range(_MAX_ROUNDS):
        try:
            obj = model.model_validate(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}
            reason = str(exc.errors()[0].get("msg", "invalid"))
            if not bad or key_field in bad or not bad & data.keys():
                report.add(ParseProblem(kind, key, reason, True))
                return None
            for name in sorted(bad & data.keys()):
                data.pop(name)
                dropped.append(name)
            continue
        if dropped:
            report.add(ParseProblem(kind, key, reason, False, tuple(dropped)))
        return obj
    report.add(ParseProblem(kind, key, reason or "too many invalid fields", True))
    return None


def parse_market(raw: Any, report: ParseReport) -> ParsedMarket | None:
    """A market payload, leniently."""
    market = validate_lenient(Market, raw, "ticker", "market", report)
    if market is None:
        return None
    return ParsedMarket(market, dict(raw))


def parse_event(raw: Any, report: ParseReport) -> ParsedEvent | None:
    """An event payload and its nested markets, each leniently; bad markets are skipped alone."""
    if not isinstance(raw, Mapping):
        report.add(ParseProblem("event", None, f"not an object ({type(raw).__name__})", True))
        return None
    body = {k: v for k, v in raw.items() if k != "markets"}
    event = validate_lenient(Event, body, "event_ticker", "event", report)
    if event is None:
        return None
    nested = raw.get("markets")
    markets: list[ParsedMarket] = []
    if isinstance(nested, list):
        for item in nested:
            parsed = parse_market(item, report)
            if parsed is not None:
                markets.append(parsed)
    elif nested is not None:
        report.add(
            ParseProblem("event", event.event_ticker, "markets is not a list", False, ("markets",))
        )
    return ParsedEvent(event, body, markets)


def parse_candle(raw: Any, ticker: str, report: ParseReport) -> ParsedCandle | None:
    """A candlestick, leniently (keyed by its integer end_period_ts); bad fields set aside."""
    if not isinstance(raw, Mapping):
        report.add(ParseProblem("candle", ticker, f"not an object ({type(raw).__name__})", True))
        return None
    end = raw.get("end_period_ts")
    if isinstance(end, bool) or not isinstance(end, int):
        report.add(ParseProblem("candle", ticker, f"bad end_period_ts {end!r}", True))
        return None
    data = dict(raw)
    invalid: dict[str, Any] = {}
    for _ in range(_MAX_ROUNDS):
        try:
            candle = Candlestick.model_validate(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")} & data.keys()
            bad.discard("end_period_ts")
            if not bad:
                report.add(ParseProblem("candle", ticker, str(exc.errors()[0]["msg"]), True))
                return None
            for name in sorted(bad):
                invalid[name] = data.pop(name)
            continue
        if invalid:
            report.add(
                ParseProblem("candle", f"{ticker}@{end}", "invalid fields", False, tuple(invalid))
            )
        return ParsedCandle(candle, invalid)
    report.add(ParseProblem("candle", ticker, "too many invalid fields", True))
    return None
