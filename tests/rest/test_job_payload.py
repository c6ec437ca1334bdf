"""The backfill_market payload contract shared with the worker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingestor.backfill.market_candles import (
    CoverageMemo,
    JobPayloadError,
    MarketRef,
    force_full_of,
    is_historical,
)

OPEN = datetime(2026, 1, 1, 10, tzinfo=UTC)
CLOSE = datetime(2026, 1, 1, 11, tzinfo=UTC)


def test_payload_round_trip() -> None:
    ref = MarketRef("KX-1", "KX", "hour", OPEN, CLOSE)
    payload = ref.job_payload()
    assert payload == {
        "series_ticker": "KX",
        "strike_period": "hour",
        "market": {
            "ticker": "KX-1",
            "open_time": "2026-01-01T10:00:00Z",
            "close_time": "2026-01-01T11:00:00Z",
        },
    }
    assert MarketRef.from_job_payload(payload) == ref
    assert not force_full_of(payload)
    assert force_full_of(ref.job_payload(force_full=True))


def test_payload_times_may_be_epoch_seconds_or_missing() -> None:
    ref = MarketRef.from_job_payload(
        {"series_ticker": "KX", "market": {"ticker": "KX-1", "open_time": int(OPEN.timestamp())}}
    )
    assert ref.open_time == OPEN and ref.close_time is None and ref.strike_period is None


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"market": "KX-1"},
        {"market": {"ticker": ""}},
        {"market": {"ticker": 5}},
        {"market": {"ticker": "A", "open_time": "soon"}},
        {"series_ticker": 3, "market": {"ticker": "A"}},
    ],
)
def test_bad_payloads_name_the_problem(payload: dict) -> None:
    with pytest.raises(JobPayloadError, match="backfill_market"):
        MarketRef.from_job_payload(payload)


def test_historical_decision() -> None:
    cutoff = datetime(2026, 1, 2, tzinfo=UTC)
    ref = MarketRef("A", "S", "hour", OPEN, CLOSE, settlement_ts=CLOSE)
    assert is_historical(ref, cutoff)
    assert not is_historical(ref, None)
    assert not is_historical(MarketRef("A", "S", "hour", OPEN, CLOSE), cutoff)
    assert is_historical(MarketRef("A", None, None, OPEN, CLOSE), None)
    assert not is_historical(MarketRef("A", "S", None, OPEN, CLOSE, historical=False), None)


def test_coverage_memo_knows_complete_markets() -> None:
    memo = CoverageMemo()
    memo.record("A", 1, 100)
    memo.record("A", 1, 50)
    memo.record("A", 60, 100)
    memo.record("B", 1, 100)
    assert memo.get("A", 1) == 100
    assert memo.complete_tickers([1, 60]) == {"A"}
