"""Price process: a bounded random walk of the implied probability, quotes around it, trades."""

from __future__ import annotations

import random
from collections.abc import Callable

from ingestor.sim.model import Book

TRADE_PROBABILITY = 0.4
_SPREADS = (1, 1, 1, 2, 2, 3, 4)
_N_SPREADS = len(_SPREADS)


def open_book(book: Book, rng: random.Random) -> None:
    """Give a market its first quote when it opens."""
    _requote(book, 5.0 + rng.random() * 90.0, rng.random)


def step(book: Book, rng: random.Random, fractional: bool) -> tuple[int, int, str] | None:
    """Move the book one step; return (yes_price_cents, count_cc, taker_outcome_side) on a trade."""
    r = rng.random
    if r() < TRADE_PROBABILITY:
        yes_taker = r() < 0.5
        price = book.yes_ask if yes_taker else book.yes_bid
        count_cc = (int(r() * 100) + 1) * 50 if fractional else (int(r() * 50) + 1) * 100
        book.last_price = price
        book.last_trade_cc = count_cc
        book.volume_cc += count_cc
        book.notional += price * count_cc
        if r() < 0.6 or book.oi_cc < count_cc:
            book.oi_cc += count_cc
        else:
            book.oi_cc -= count_cc
        _requote(book, book.mid + (0.6 if yes_taker else -0.6), r)
        return price, count_cc, "yes" if yes_taker else "no"
    _requote(book, book.mid + (r() - 0.5) * 3.0, r)
    return None


def _requote(book: Book, mid: float, r: Callable[[], float]) -> None:
    if mid < 2.5:
        mid = 2.5
    elif mid > 97.5:
        mid = 97.5
    book.mid = mid
    spread = _SPREADS[int(r() * _N_SPREADS)]
    bid = int(mid - spread / 2 + 0.5)
    if bid < 1:
        bid = 1
    elif bid > 98:
        bid = 98
    ask = bid + spread
    book.yes_bid = bid
    book.yes_ask = ask if ask < 99 else 99
    book.bid_size_cc = (1 + int(r() * 500)) * 100
    book.ask_size_cc = (1 + int(r() * 500)) * 100
