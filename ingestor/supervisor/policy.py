"""Restart policy: exponential jittered backoff, reset after a stable run, FATAL after a burst.

A pure object: times come in as arguments (trio's clock in production, any float in tests), so
the whole policy is testable without processes or sleeping.
"""

from __future__ import annotations

import enum
import random
import signal
from collections import deque
from dataclasses import dataclass

EXIT_BAD_CONFIG = 2
"""A child exiting with this status has bad settings: FATAL at once, no restart storm."""

EXIT_NOT_READY = 75
"""EX_TEMPFAIL: the database is unreachable or the schema is behind. Restarted with backoff,
never counted toward FATAL, so roles started next to `ingestor migrate` come up once it is done."""


class InvalidRestartSettings(ValueError):
    """A restart setting is out of range; the message names the option."""


@dataclass(frozen=True)
class RestartSettings:
    """Knobs of the restart policy, in seconds (see `ingestor run --help`)."""

    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 0.2
    stable_seconds: float = 30.0
    start_retries: int = 5
    fail_window: float = 60.0
    startsecs: float = 1.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.backoff_initial < 0:
            problems.append(f"--backoff-initial must be >= 0 (got {self.backoff_initial})")
        if self.backoff_max < self.backoff_initial:
            problems.append(
                f"--backoff-max must be >= --backoff-initial (got {self.backoff_max} < "
                f"{self.backoff_initial})"
            )
        if not 0 <= self.jitter < 1:
            problems.append(f"jitter must be in [0, 1) (got {self.jitter})")
        if self.stable_seconds <= 0:
            problems.append(f"--stable-seconds must be > 0 (got {self.stable_seconds})")
        if self.start_retries < 0:
            problems.append(f"--start-retries must be >= 0 (got {self.start_retries})")
        if self.fail_window <= 0:
            problems.append(f"--fail-window must be > 0 (got {self.fail_window})")
        if self.startsecs < 0:
            problems.append(f"--startsecs must be >= 0 (got {self.startsecs})")
        if problems:
            raise InvalidRestartSettings("; ".join(problems))


class Verdict(enum.Enum):
    RESTART = "restart"
    FATAL = "fatal"


@dataclass(frozen=True)
class ExitDecision:
    """What to do after a child exited: restart after `delay` seconds, or give up."""

    verdict: Verdict
    delay: float
    reason: str

    @property
    def fatal(self) -> bool:
        return self.verdict is Verdict.FATAL


class RestartTracker:
    """The restart state machine of one child.

    Backoff doubles per consecutive failure (capped, jittered downwards so the cap holds) and
    resets when a run lasted `stable_seconds`. The start limit counts failures within
    `fail_window` seconds of the child's own run time: waits in backoff do not count, so a
    growing backoff cannot stretch a crash loop out of the window and hide it from FATAL.
    """

    def __init__(self, settings: RestartSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._rng = rng or random.Random()
        self._started_at: float | None = None
        self._run_time = 0.0
        self._failures: deque[float] = deque()
        self._streak = 0

    @property
    def streak(self) -> int:
        """Consecutive failures since the last stable run."""
        return self._streak

    def started(self, now: float) -> None:
        """The child was spawned at `now`."""
        self._started_at = now

    def is_stable(self, now: float) -> bool:
        """True once the current run has lasted `stable_seconds`."""
        return (
            self._started_at is not None and now - self._started_at >= self.settings.stable_seconds
        )

    def backoff(self, streak: int) -> float:
        """Delay before the restart that follows the `streak`-th consecutive failure."""
        s = self.settings
        base = min(s.backoff_max, s.backoff_initial * 2.0 ** max(0, streak - 1))
        return base * (1.0 - s.jitter * self._rng.random())

    def exited(self, now: float, code: int | None) -> ExitDecision:
        """The child exited at `now` with `code` (negative: killed by a signal)."""
        if self._started_at is None:
            raise RuntimeError("exited() called before started()")
        ran = max(0.0, now - self._started_at)
        self._started_at = None
        self._run_time += ran
        if ran >= self.settings.stable_seconds:
            self._failures.clear()
            self._streak = 0
        if code == EXIT_BAD_CONFIG:
            return ExitDecision(Verdict.FATAL, 0.0, "bad configuration; not restarting")
        self._streak += 1
        delay = self.backoff(self._streak)
        if code == EXIT_NOT_READY:
            return ExitDecision(Verdict.RESTART, delay, "not ready (status 75); retrying")
        self._failures.append(self._run_time)
        while self._failures and self._failures[0] < self._run_time - self.settings.fail_window:
            self._failures.popleft()
        if len(self._failures) > self.settings.start_retries:
            return ExitDecision(
                Verdict.FATAL,
                0.0,
                f"{len(self._failures)} failures within {self.settings.fail_window:g}s of run "
                f"time (--start-retries {self.settings.start_retries})",
            )
        return ExitDecision(Verdict.RESTART, delay, f"{describe_exit(code)}; restarting")


def describe_exit(code: int | None) -> str:
    """'exited with status 1' or 'killed by SIGKILL' for a returncode."""
    if code is None:
        return "could not be started"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"
