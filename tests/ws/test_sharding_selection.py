"""Sharding covers every market exactly once; the cap keeps the soonest-closing, without churn."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestor.stream.selection import Candidate, select_markets
from ingestor.stream.sharding import Shard, shard_of

tickers = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.", min_size=1, max_size=30)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_shard_is_blake2b_64_modulo_count() -> None:
    digest = hashlib.blake2b(b"KXBTCD-26JAN0514-T100250", digest_size=8).digest()
    expected = int.from_bytes(digest, "big") % 7
    assert shard_of("KXBTCD-26JAN0514-T100250", 7) == expected
    assert shard_of("anything", 1) == 0


@given(st.sets(tickers, max_size=200), st.integers(min_value=1, max_value=16))
def test_shards_partition_every_ticker_exactly_once(names: set[str], count: int) -> None:
    shards = [Shard(i, count) for i in range(count)]
    for name in names:
        assert sum(s.owns(name) for s in shards) == 1


def test_shard_rejects_an_id_outside_the_count() -> None:
    with pytest.raises(ValueError, match="WS_SHARD_ID=2"):
        Shard(2, 2)


def _c(ticker: str, minutes: int | None) -> Candidate:
    return Candidate(ticker, None if minutes is None else T0 + timedelta(minutes=minutes))


def test_cap_keeps_soonest_closing_and_unknown_close_last() -> None:
    cands = [_c("D", None), _c("C", 30), _c("A", 10), _c("B", 20)]
    assert select_markets(cands, frozenset(), 2) == {"A", "B"}
    assert select_markets(cands, frozenset(), 3) == {"A", "B", "C"}
    assert select_markets(cands, frozenset(), 10) == {"A", "B", "C", "D"}


def test_subscribed_markets_are_not_swapped_for_equal_ranked_ones() -> None:
    cands = [_c("A", 10), _c("B", 20), _c("C", 20), _c("Z", 20)]
    # Without history the ticker breaks the tie; once Z is subscribed it keeps its place.
    assert select_markets(cands, frozenset(), 2) == {"A", "B"}
    assert select_markets(cands, frozenset({"A", "Z"}), 2) == {"A", "Z"}
    # A sooner-closing newcomer still wins over a later-closing subscribed market.
    assert select_markets([*cands, _c("N", 5)], frozenset({"A", "Z"}), 2) == {"N", "A"}


candidates = st.lists(
    st.builds(_c, tickers, st.one_of(st.none(), st.integers(min_value=0, max_value=50))),
    max_size=60,
)


@given(candidates, st.integers(min_value=1, max_value=40), st.sets(tickers, max_size=20))
def test_selection_is_bounded_and_a_refresh_does_not_churn(
    cands: list[Candidate], cap: int, current: set[str]
) -> None:
    first = select_markets(cands, frozenset(current), cap)
    assert len(first) == min(cap, len({c.ticker for c in cands}))
    assert first <= {c.ticker for c in cands}
    assert select_markets(cands, first, cap) == first
    assert select_markets(list(reversed(cands)), first, cap) == first
