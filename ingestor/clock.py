"""Where "now" comes from: wall time in production, the simulator's clock in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
