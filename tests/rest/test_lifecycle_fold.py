"""Lifecycle messages folded into market patches: forward-only, in order, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ingestor.catalog.lifecycle import LifecycleRow, fold, fold_market

T = datetime(2026, 1, 1, tzinfo=UTC)


def row(i: int, kind: str, status: str | None = "active", ticker: str = "M", **kw) -> LifecycleRow:  # type: ignore[no-untyped-def]
    base = {
        "close_ts": None,
        "settled_ts": None,
        "result": None,
        "settlement_value_dollars": None,
        "is_deactivated": None,
    }
    return LifecycleRow(
        i, ticker, kind, T + timedelta(seconds=i), **{**base, **kw}, market_status=status
    )


def test_settlement_takes_the_market_out_of_the_active_set() -> None:
    patch = fold_market(
        [
            row(1, "determined", result="no", settlement_value_dollars=Decimal("0")),
            row(2, "settled", settled_ts=T),
        ]
    )
    assert patch is not None
    assert patch.status == "finalized" and patch.result == "no"
    assert patch.settlement_value_dollars == Decimal("0")  # zero is a value, kept
    assert patch.settlement_ts == T and patch.leaves_active
    assert patch.as_of == T + timedelta(seconds=2)


def test_pause_and_reactivation_follow_message_order() -> None:
    patch = fold_market([row(1, "deactivated", is_deactivated=True), row(2, "activated")])
    assert patch is not None and patch.status == "active" and patch.active_status == "active"
    patch = fold_market([row(1, "activated"), row(2, "deactivated")])
    assert patch is not None and patch.status == "inactive" and not patch.leaves_active


def test_a_decided_market_is_not_reopened_by_later_messages() -> None:
    patch = fold_market(
        [
            row(1, "activated", status="finalized"),
            row(2, "close_date_updated", status="finalized", close_ts=T),
            row(3, "determined", status="finalized", result="yes"),
        ]
    )
    assert patch is not None
    assert patch.status == "finalized" and patch.close_time is None
    assert patch.result == "yes" and patch.leaves_active


def test_close_time_moves_for_trading_markets() -> None:
    later = T + timedelta(days=1)
    patch = fold_market([row(1, "close_date_updated", close_ts=later)])
    assert patch is not None and patch.close_time == later and patch.status is None


def test_fold_groups_by_market_in_id_order() -> None:
    patches = fold(
        [
            row(3, "settled", ticker="B"),
            row(1, "deactivated", ticker="A"),
            row(2, "activated", ticker="A"),
        ]
    )
    assert [(p.ticker, p.status) for p in patches] == [("A", "active"), ("B", "finalized")]
    assert fold([]) == []
