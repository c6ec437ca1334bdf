"""Periodic passes under trio: run, wait out the interval, retry sooner after a failure."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import psycopg
import trio

from ingestor.errors import DatabaseUnavailable
from ingestor.kalshi.errors import KalshiError

log = logging.getLogger(__name__)

# Failures a pass may hit and that the next attempt can get past (API or database down).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    KalshiError,
    DatabaseUnavailable,
    psycopg.OperationalError,
)
FIRST_RETRY_SECONDS = 30.0


def only(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    """True when `exc` is one of `types`, or a group made only of them (at any depth)."""
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(types)
        return rest is None
    return isinstance(exc, types)


def is_cancellation(exc: BaseException) -> bool:
    """True for trio.Cancelled, alone or as the only content of exception groups."""
    return only(exc, (trio.Cancelled,))


def next_delay(interval: float, failures: int, first_retry: float = FIRST_RETRY_SECONDS) -> float:
    """Seconds until the next start: the interval, or a doubling retry (capped) after failures."""
    if interval <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    if failures <= 0:
        return interval
    return min(interval, first_retry * 2 ** min(failures - 1, 20))


async def run_every(
    name: str,
    interval: float,
    pass_fn: Callable[[], Awaitable[object]],
    *,
    first_retry: float = FIRST_RETRY_SECONDS,
) -> None:
    """Run `pass_fn` every `interval` seconds, measured from the start of each pass.

    Transient failures are logged and retried after first_retry, 2x, 4x ... (at most the
    interval); any other exception ends the loop (and the role: the supervisor restarts it).
    """
    failures = 0
    while True:
        started = trio.current_time()
        try:
            await pass_fn()
            failures = 0
        except BaseException as exc:
            if not only(exc, TRANSIENT_ERRORS):
                raise
            failures += 1
            log.warning(
                "pass failed loop=%s failures=%d error=%s: %s",
                name,
                failures,
                type(exc).__name__,
                _first_line(exc),
            )
        await trio.sleep_until(started + next_delay(interval, failures, first_retry))


def _first_line(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
