"""From parsed WS messages to database rows: ticks (as COPY lines) and lifecycle events.

A tick keeps every value Kalshi sent: columns for the known fields (current `*_dollars` /
`*_fp` shape or the legacy integer one, already converted by the parser), the rest in `extra`
(NULL when nothing is left over). Time comes from `ts_ms`, else `ts`, else `time`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from ingestor.db.ticks import QuoteRow, encode_row, join_numeric
from ingestor.kalshi.models import EPOCH, epoch_to_datetime
from ingestor.kalshi.ws_protocol import (
    EVENT_FEE_UPDATE,
    EVENT_LIFECYCLE,
    MARKET_LIFECYCLE,
    DataMessage,
    Ticker,
)
from ingestor.stream.fingerprint import (
    MISSING,
    canonical_json,
    canonical_texts,
    fingerprint_of_texts,
    lifecycle_fingerprint,
)

_US = timedelta(microseconds=1)
_INT64 = (-(2**63), 2**63 - 1)
# Numerics PostgreSQL stores without complaint (numeric allows far more; this keeps rows sane).
_MAX_ADJUSTED = 1000
_MAX_TS_US = 253_402_300_800 * 1_000_000  # 10000-01-01T00:00:00Z

# Payload fields with a column (or deliberately not kept: market_id duplicates the ticker,
# ts/time duplicate ts_ms); legacy names are consumed with their current counterparts.
CONSUMED_FIELDS: frozenset[str] = frozenset({
    "market_ticker", "market_id",
    "price_dollars", "price",
    "yes_bid_dollars", "yes_bid",
    "yes_ask_dollars", "yes_ask",
    "yes_bid_size_fp", "yes_ask_size_fp", "last_trade_size_fp",
    "volume_fp", "volume",
    "open_interest_fp", "open_interest",
    "dollar_volume", "dollar_open_interest",
    "ts", "ts_ms", "time",
})

LIFECYCLE_TYPES: frozenset[str] = frozenset({MARKET_LIFECYCLE, EVENT_LIFECYCLE, EVENT_FEE_UPDATE})


class UnusableTick(ValueError):
    """A ticker message that cannot become a row (no time, unstorable ticker or value)."""


def us_to_datetime(us: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=us)


class Received(NamedTuple):
    """When a frame reached the role: wall time in µs (stored) and trio time (latency)."""

    us: int
    text: str
    clock: float

    @property
    def at(self) -> datetime:
        return us_to_datetime(self.us)

    @classmethod
    def now(cls, clock: float, at: datetime | None = None) -> Received:
        us = time.time_ns() // 1000 if at is None else (at - EPOCH) // _US
        return cls(us, ts_text(us), clock)


@dataclass(slots=True)
class TickRow:
    """One tick ready for COPY, with what the buffer and writer need to know about it."""

    ticker: str
    ts_us: int
    fingerprint: int
    received_us: int
    received_clock: float
    line: str

    @property
    def received_at(self) -> datetime:
        return us_to_datetime(self.received_us)


_ts_cache: list[Any] = [None, ""]


def ts_text(ts_us: int) -> str:
    """Microseconds since the epoch as a UTC timestamptz literal (second prefix cached)."""
    sec, micro = divmod(ts_us, 1_000_000)
    if _ts_cache[0] != sec:
        _ts_cache[1] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))
        _ts_cache[0] = sec
    return f"{_ts_cache[1]}.{micro:06d}+00"


def _check_ticker(ticker: str) -> None:
    if "\x00" in ticker:
        raise UnusableTick("market_ticker contains NUL")
    try:
        ticker.encode("utf-8")
    except UnicodeEncodeError:
        raise UnusableTick("market_ticker is not valid Unicode") from None


def _check_range(texts: list[str | None]) -> None:
    for text in texts:
        if text is not None and ("E" in text or len(text) > _MAX_ADJUSTED):
            value = Decimal(text)
            if value and abs(value.adjusted()) > _MAX_ADJUSTED:
                raise UnusableTick(f"value out of range: {text[:40]}")


def tick_extra(raw: Mapping[str, Any]) -> str | None:
    """Canonical JSON of the payload fields without a column, or None when there are none."""
    if CONSUMED_FIELDS.issuperset(raw):
        return None
    return canonical_json({k: v for k, v in raw.items() if k not in CONSUMED_FIELDS})


def build_tick(t: Ticker, raw: Mapping[str, Any], received: Received) -> TickRow:
    """The market_ticks row of one ticker message, or UnusableTick."""
    ticker = t.market_ticker
    if not (ticker.isascii() and ticker.isprintable()):
        _check_ticker(ticker)
    if t.ts_ms is not None:
        ts_us = t.ts_ms * 1000
    elif t.ts is not None:
        ts_us = (t.ts - EPOCH) // _US
    else:
        raise UnusableTick("ticker message without ts_ms, ts or time")
    if not 0 <= ts_us < _MAX_TS_US:
        raise UnusableTick(f"exchange time outside 1970-9999: {ts_us} us")
    texts = [
        None if v is None else str(v)
        for v in (
            t.price_dollars, t.yes_bid_dollars, t.yes_ask_dollars, t.yes_bid_size_fp,
            t.yes_ask_size_fp, t.last_trade_size_fp, t.volume_fp, t.open_interest_fp,
        )
    ]
    numeric = join_numeric(texts)
    if "E" in numeric or len(numeric) > _MAX_ADJUSTED:  # only then can a value be out of range
        _check_range(texts)
    canonical = canonical_texts(texts, numeric)
    dv, doi = t.dollar_volume, t.dollar_open_interest
    for n in (dv, doi):
        if n is None:
            canonical.append(MISSING)
        elif _INT64[0] <= n <= _INT64[1]:
            canonical.append(str(n))
        else:
            raise UnusableTick(f"integer out of bigint range: {n}")
    extra = tick_extra(raw)
    fp = fingerprint_of_texts(ticker, ts_us, canonical, extra)
    line = encode_row(ticker, ts_text(ts_us), fp, received.text, numeric, dv, doi, extra)
    return TickRow(ticker, ts_us, fp, received.us, received.clock, line)


def quote_row(t: Ticker, ts_us: int, received_us: int) -> QuoteRow:
    """The market_quotes_latest row of a ticker message."""
    return QuoteRow(
        t.market_ticker, us_to_datetime(ts_us), us_to_datetime(received_us), t.price_dollars,
        t.yes_bid_dollars, t.yes_ask_dollars, t.volume_fp, t.open_interest_fp,
    )


@dataclass(frozen=True, slots=True)
class LifecycleRow:
    """One lifecycle_events row; `ts` is the event's own time when it carries one."""

    msg_type: str
    event_type: str | None
    market_ticker: str | None
    event_ticker: str | None
    ts: datetime
    received_at: datetime
    open_ts: datetime | None
    close_ts: datetime | None
    determination_ts: datetime | None
    settled_ts: datetime | None
    result: str | None
    settlement_value_dollars: Decimal | None
    is_deactivated: bool | None
    fingerprint: str
    raw_json: str


def lifecycle_key(message: DataMessage) -> str | None:
    """The ticker a lifecycle message is sharded by: market_ticker, else event_ticker."""
    raw = message.raw
    if message.type == MARKET_LIFECYCLE:
        key = raw.get("market_ticker")
    else:
        key = raw.get("event_ticker")
    return key if isinstance(key, str) and key else None


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return epoch_to_datetime(value)
        except (OverflowError, ValueError):
            return None
    return None


# Lifecycle fields that date the event itself; messages without any are told apart by when
# they arrived.
_OWN_TIME_FIELDS = ("open_ts", "close_ts", "determination_ts", "settled_ts", "strike_date")


def build_lifecycle(message: DataMessage, received: Received) -> LifecycleRow:
    """The lifecycle_events row of a market_lifecycle_v2 / event_lifecycle / fee message."""
    raw = message.raw
    body: Any = message.body
    raw_json = canonical_json(raw)
    timed = any(raw.get(k) is not None for k in _OWN_TIME_FIELDS)
    second = "" if timed else received.at.replace(microsecond=0).isoformat()
    fingerprint = lifecycle_fingerprint(message.type, raw_json, second)
    if message.type == MARKET_LIFECYCLE:
        meta = raw.get("additional_metadata")
        event_ticker = meta.get("event_ticker") if isinstance(meta, dict) else None
        determination = _epoch(raw.get("determination_ts"))
        settled = _epoch(raw.get("settled_ts"))
        return LifecycleRow(
            msg_type=message.type,
            event_type=getattr(body, "event_type", None),
            market_ticker=getattr(body, "market_ticker", None),
            event_ticker=event_ticker if isinstance(event_ticker, str) else None,
            ts=settled or determination or received.at,
            received_at=received.at,
            open_ts=_epoch(raw.get("open_ts")),
            close_ts=_epoch(raw.get("close_ts")),
            determination_ts=determination,
            settled_ts=settled,
            result=getattr(body, "result", None) or None,
            settlement_value_dollars=getattr(body, "settlement_value", None),
            is_deactivated=getattr(body, "is_deactivated", None),
            fingerprint=fingerprint,
            raw_json=raw_json,
        )
    return LifecycleRow(
        msg_type=message.type, event_type=None, market_ticker=None,
        event_ticker=getattr(body, "event_ticker", None), ts=received.at,
        received_at=received.at, open_ts=None, close_ts=None, determination_ts=None,
        settled_ts=None, result=None, settlement_value_dollars=None, is_deactivated=None,
        fingerprint=fingerprint, raw_json=raw_json,
    )
