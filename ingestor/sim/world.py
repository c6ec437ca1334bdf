"""The simulated catalogue: series, event and market tickers, strikes, lifecycle plans."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from ingestor.sim.model import Event, Market, Series

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
MONTH = 30 * DAY
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_CANDIDATES = ("Alvarez", "Brennan", "Chowdhury", "Dubois", "Eriksen", "Fujita", "Garcia", "Haddad")


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """Static description of one simulated series."""

    ticker: str
    title: str
    category: str
    frequency: str
    tags: tuple[str, ...]
    strike_period: str | None
    period_s: int | None  # None: a one-off series with a single event
    offset_s: int  # events close at k * period_s + offset_s
    kind: str  # greater | between | custom
    base: float
    step: float
    unit: str


CATALOG: tuple[SeriesSpec, ...] = (
    SeriesSpec("SIMBTCH", "Bitcoin price, hourly", "Crypto", "hourly", ("BTC",), "hour",
               HOUR, 0, "greater", 100000.0, 250.0, "USD"),
    SeriesSpec("SIMTEMPD", "Springfield high temperature", "Climate and Weather", "daily",
               ("Weather",), "day", DAY, 23 * HOUR, "between", 70.0, 2.0, "F"),
    SeriesSpec("SIMETHH", "Ether price range, hourly", "Crypto", "hourly", ("ETH",), "hour",
               HOUR, 0, "between", 3500.0, 20.0, "USD"),
    SeriesSpec("SIMINXD", "Index close, daily", "Financials", "daily", ("Indices",), "day",
               DAY, 20 * HOUR, "greater", 6000.0, 10.0, "points"),
    # Epoch day 0 was a Thursday: +1 day puts weekly closes on Fridays.
    SeriesSpec("SIMGASW", "National gas price, weekly", "Economics", "weekly", ("Energy",),
               "week", WEEK, DAY + 21 * HOUR, "greater", 3.1, 0.05, "USD/gal"),
    SeriesSpec("SIMRATEM", "Policy rate, monthly", "Economics", "monthly", ("Rates",), "month",
               MONTH, 18 * HOUR, "greater", 4.0, 0.25, "%"),
    SeriesSpec("SIMMAYOR", "Springfield mayoral race", "Politics", "one-off", ("Elections",),
               None, None, 0, "custom", 0.0, 0.0, ""),
)


def allocate(markets: int) -> list[int]:
    """Markets per event for each catalogue series so the open events hold `markets` in total."""
    n = len(CATALOG)
    return [markets // n + (1 if i < markets % n else 0) for i in range(n)]


def make_series(spec: SeriesSpec, markets_per_event: int, created_ts: int) -> Series:
    """A Series record from its spec."""
    return Series(
        ticker=spec.ticker, title=spec.title, category=spec.category, frequency=spec.frequency,
        tags=list(spec.tags), strike_period=spec.strike_period, period_s=spec.period_s,
        offset_s=spec.offset_s, markets_per_event=markets_per_event, kind=spec.kind,
        strike_base=spec.base, strike_step=spec.step, unit=spec.unit,
        created_ts=created_ts, updated_ts=created_ts,
    )


def next_close(series: Series, after: int) -> int:
    """The first close time on the series grid strictly after `after`."""
    assert series.period_s is not None
    k = (after - series.offset_s) // series.period_s + 1
    return k * series.period_s + series.offset_s


def creation_lead(series: Series) -> int:
    """How long before opening an event of this series is listed."""
    assert series.period_s is not None
    return min(series.period_s, DAY)


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def event_ticker(series: Series, close_ts: int) -> str:
    """Kalshi-style event ticker, e.g. SIMBTCH-26JAN0514 (close hour for hourly series)."""
    d = _utc(close_ts)
    stamp = f"{d:%y}{_MONTHS[d.month - 1]}{d:%d}"
    if series.strike_period == "hour":
        stamp += f"{d:%H}"
    return f"{series.ticker}-{stamp}"


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _json_num(v: float) -> float | int:
    r = round(v, 4)
    return int(r) if r == int(r) else r


def build_event(
    series: Series, seed: int, seq: int, open_ts: int, close_ts: int, created_ts: int
) -> Event:
    """An event of a periodic series closing at close_ts."""
    d = _utc(close_ts)
    when = f"{_MONTHS[d.month - 1].title()} {d.day}, {d.year}"
    if series.strike_period == "hour":
        when += f" at {d:%H}:00 UTC"
    return Event(
        event_ticker=event_ticker(series, close_ts), series_ticker=series.ticker, seq=seq,
        title=f"{series.title}: {when}", sub_title=f"On {when}", strike_date=None,
        strike_period=series.strike_period, mutually_exclusive=series.kind != "greater",
        collateral_return_type="MECNET" if series.kind != "greater" else "",
        created_ts=created_ts, updated_ts=created_ts, close_ts=close_ts,
    )


def build_one_off_event(series: Series, seq: int, close_ts: int, created_ts: int) -> Event:
    """The single event of a one-off series (strike_date set, no strike_period)."""
    d = _utc(close_ts)
    return Event(
        event_ticker=f"{series.ticker}-{d:%y}", series_ticker=series.ticker, seq=seq,
        title=f"Who will win the {series.title.lower()}?", sub_title=f"Decided {d:%Y-%m-%d}",
        strike_date=close_ts, strike_period=None, mutually_exclusive=True,
        collateral_return_type="MECNET", created_ts=created_ts, updated_ts=created_ts,
        close_ts=close_ts,
    )


def market_rng(seed: int, ticker: str) -> random.Random:
    """A random stream owned by one market, independent of everything else."""
    return random.Random(f"{seed}/{ticker}")


def build_markets(
    series: Series, event: Event, seed: int, first_seq: int, open_ts: int, close_ts: int
) -> list[Market]:
    """The markets of one event, with strikes, texts, and their lifecycle plan."""
    erng = random.Random(f"{seed}/{event.event_ticker}")
    n = series.markets_per_event
    base = series.strike_base + series.strike_step * erng.randint(-3, 3)
    # greater: markets below the realised value resolve yes; otherwise exactly one winner.
    threshold = erng.randint(0, n)
    winner = erng.randrange(n)
    markets: list[Market] = []
    for j in range(n):
        floor: float | None
        cap: float | None
        custom: dict[str, str] | None = None
        if series.kind == "greater":
            floor, cap = base + j * series.strike_step, None
            suffix = f"T{_num(floor)}"
            yes_sub = f"Above {_num(floor)} {series.unit}"
            no_sub = f"{_num(floor)} {series.unit} or below"
            outcome = "yes" if j < threshold else "no"
        elif series.kind == "between":
            floor = base + j * series.strike_step
            cap = floor + series.strike_step
            suffix = f"B{_num(floor + series.strike_step / 2)}"
            yes_sub = f"{_num(floor)} to {_num(cap)} {series.unit}"
            no_sub = f"Not {_num(floor)} to {_num(cap)} {series.unit}"
            outcome = "yes" if j == winner else "no"
        else:
            name = _CANDIDATES[j] if j < len(_CANDIDATES) else f"Candidate {j + 1}"
            floor = cap = None
            custom = {"Candidate": name}
            suffix = name[:3].upper() if j < len(_CANDIDATES) else f"C{j + 1}"
            yes_sub = name
            no_sub = f"Not {name}"
            outcome = "yes" if j == winner else "no"
        ticker = f"{event.event_ticker}-{suffix}"
        rng = market_rng(seed, ticker)
        markets.append(
            Market(
                ticker=ticker, event_ticker=event.event_ticker, series_ticker=series.ticker,
                market_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                seq=first_seq + j,
                title=f"{event.title}: {yes_sub}?",
                yes_sub_title=yes_sub, no_sub_title=no_sub,
                rules_primary=(
                    f"If the outcome of {event.title} is {yes_sub}, the market resolves to Yes."
                ),
                rules_secondary="Simulated market; settlement source is the simulator itself.",
                strike_type=series.kind if series.kind != "between" else "between",
                floor_strike=None if floor is None else _json_num(floor),
                cap_strike=None if cap is None else _json_num(cap),
                custom_strike=custom,
                created_ts=event.created_ts, updated_ts=event.created_ts,
                open_ts=open_ts, close_ts=close_ts,
                expected_expiration_ts=close_ts + 300,
                latest_expiration_ts=close_ts + WEEK,
                can_close_early=series.kind == "custom" or rng.random() < 0.2,
                fractional=rng.random() < 0.2,
                outcome=outcome,
                determine_delay_s=rng.randint(30, 240),
                settle_delay_s=rng.randint(60, 600),
            )
        )
    return markets
