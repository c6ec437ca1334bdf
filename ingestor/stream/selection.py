"""Which of a shard's markets to subscribe when there are more than MAX_ACTIVE_TICKERS.

Pure and deterministic: the soonest-closing markets win (close_time, then ticker); among
markets with the same close_time, ones already subscribed keep their place, so a refresh
never swaps a subscribed market out for an equal-ranked one (no round-robin churn).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from datetime import datetime
from typing import NamedTuple


class Candidate(NamedTuple):
    """A market the shard could subscribe; a close_time of None ranks last."""

    ticker: str
    close_time: datetime | None


def select_markets(
    candidates: Iterable[Candidate], current: Set[str], cap: int
) -> frozenset[str]:
    """The tickers to subscribe: all when they fit, else the `cap` best ranked (a ticker listed
    twice ranks by its sooner close time)."""
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    pool = list(candidates)
    tickers = {c.ticker for c in pool}
    if len(tickers) <= cap:
        return frozenset(tickers)
    ranked = sorted(
        pool,
        key=lambda c: (
            c.close_time is None,
            c.close_time.timestamp() if c.close_time is not None else 0.0,
            c.ticker not in current,
            c.ticker,
        ),
    )
    chosen: dict[str, None] = {}
    for c in ranked:
        chosen.setdefault(c.ticker)
        if len(chosen) == cap:
            break
    return frozenset(chosen)
