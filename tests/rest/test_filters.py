"""Strike-period filter, horizons for events without one, live statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingestor.catalog.filters import StrikeFilter, is_active_status, normalise_strike_period
from ingestor.kalshi.models import Event, Market

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("hour", "hour"),
        ("Hourly", "hour"),
        ("15m", "hour"),
        ("30 minutes", "hour"),
        ("daily", "day"),
        ("D", "day"),
        ("weekly", "week"),
        ("month", "month"),
        ("", None),
        (None, None),
        ("quarterly", "quarterly"),
    ],
)
def test_normalise_strike_period(raw: str | None, norm: str | None) -> None:
    assert normalise_strike_period(raw) == norm


def _markets(hours: float) -> list[Market]:
    return [Market(ticker="M", open_time=T, close_time=T + timedelta(hours=hours))]


def test_explicit_strike_period_decides() -> None:
    f = StrikeFilter.of(["hour", "day"])
    assert f.classify(Event(event_ticker="E", strike_period="hourly"), []) == "hour"
    assert f.classify(Event(event_ticker="E", strike_period="week"), _markets(1)) is None


def test_missing_strike_period_needs_a_horizon_that_fits() -> None:
    event = Event(event_ticker="E")
    assert StrikeFilter.of(["hour", "day"]).classify(event, _markets(1)) is None
    f = StrikeFilter.of(["hour", "day"], hour_max_hours=2, day_max_hours=36)
    assert f.classify(event, _markets(1.5)) == "hour"
    assert f.classify(event, _markets(30)) == "day"
    assert f.classify(event, _markets(37)) is None
    assert f.classify(event, []) is None
    assert (
        StrikeFilter.of(["day"], hour_max_hours=2, day_max_hours=36).classify(event, _markets(1))
        == "day"
    )


def test_strike_date_closes_the_span_when_markets_have_no_close() -> None:
    f = StrikeFilter.of(["day"], day_max_hours=24)
    event = Event(event_ticker="E", strike_date=T + timedelta(hours=20))
    assert f.classify(event, [Market(ticker="M", open_time=T)]) == "day"


@pytest.mark.parametrize(
    ("status", "active"),
    [
        ("active", True),
        ("inactive", True),
        ("open", True),
        ("paused", True),
        ("initialized", False),
        ("closed", False),
        ("determined", False),
        ("finalized", False),
        ("settled", False),
        (None, False),
        ("weird", False),
    ],
)
def test_active_statuses(status: str | None, active: bool) -> None:
    assert is_active_status(status) is active
