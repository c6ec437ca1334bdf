"""Fault injection: failing or slow REST replies, dropped WS connections, bad or missing frames.

Tests drive `Faults` directly; the command line passes `--fault SPEC` strings (see parse_fault).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class FaultSpecError(ValueError):
    """A --fault string that cannot be understood."""


class FaultTarget(Protocol):
    """What the WS side offers to immediate faults."""

    def drop_all(self) -> int:
        """Cut every WS connection; return how many were cut."""
        ...

    def fail_subscriptions(self, code: int, channel: str) -> int:
        """Send error `code` on every subscription of `channel` and drop them; return count."""
        ...


class Faults:
    """Armed faults. REST faults apply to the next replies in order; frame faults per data frame."""

    def __init__(self) -> None:
        self._http: deque[tuple[int | None, float]] = deque()
        self._frames: deque[str] = deque()
        self._target: FaultTarget | None = None

    def attach(self, target: FaultTarget) -> None:
        """Connect to the running WS hub."""
        self._target = target

    def _need_target(self) -> FaultTarget:
        if self._target is None:
            raise RuntimeError("faults are not attached to a running simulator")
        return self._target

    # ------------------------------------------------------------------ REST

    def http_errors(self, n: int, status: int = 429) -> None:
        """The next n REST replies fail with `status` (429 or any 4xx/5xx)."""
        if not 400 <= status <= 599:
            raise ValueError(f"status {status}: expected a 4xx or 5xx code")
        log.info("fault armed kind=http_errors n=%d status=%d", n, status)
        self._http.extend([(status, 0.0)] * n)

    def slow_replies(self, n: int, seconds: float) -> None:
        """The next n REST replies are delayed by `seconds`."""
        log.info("fault armed kind=slow_replies n=%d seconds=%s", n, seconds)
        self._http.extend([(None, seconds)] * n)

    def take_http(self) -> tuple[int | None, float] | None:
        """The fault for the reply being made now: (status or None, delay), or None."""
        return self._http.popleft() if self._http else None

    # ------------------------------------------------------------------ WS

    def drop_ws_connections(self) -> int:
        """Cut every open WS connection now (no close frame); return how many."""
        n = self._need_target().drop_all()
        log.info("fault kind=drop_ws_connections dropped=%d", n)
        return n

    def malformed_frames(self, n: int) -> None:
        """The next n data frames are replaced by text that is not valid JSON."""
        self._frames.extend(["malformed"] * n)

    def duplicate_frames(self, n: int) -> None:
        """The next n data frames are sent twice."""
        self._frames.extend(["duplicate"] * n)

    def drop_frames(self, n: int) -> None:
        """The next n data frames are silently not sent (a gap the client cannot see)."""
        self._frames.extend(["drop"] * n)

    def ws_error(self, code: int = 25, channel: str = "ticker") -> int:
        """Send error `code` on each subscription of `channel`, dropping them server-side."""
        n = self._need_target().fail_subscriptions(code, channel)
        log.info("fault kind=ws_error code=%d channel=%s subscriptions=%d", code, channel, n)
        return n

    @property
    def frames_armed(self) -> bool:
        """True while data-frame faults are pending (checked on the hot path)."""
        return bool(self._frames)

    def take_frame(self) -> str | None:
        """The fault for the data frame being sent now, or None."""
        return self._frames.popleft() if self._frames else None

    def clear(self) -> None:
        """Disarm every pending fault."""
        self._http.clear()
        self._frames.clear()


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One --fault: what to inject, how much, and how often (every=None: once at start)."""

    kind: str  # http | slow | drop | malformed | duplicate | gap | wserror
    count: int = 1
    status: int = 429
    seconds: float = 0.0
    code: int = 25
    every: float | None = None

    def apply(self, faults: Faults) -> None:
        """Arm or trigger this fault once."""
        if self.kind == "http":
            faults.http_errors(self.count, self.status)
        elif self.kind == "slow":
            faults.slow_replies(self.count, self.seconds)
        elif self.kind == "drop":
            faults.drop_ws_connections()
        elif self.kind == "malformed":
            faults.malformed_frames(self.count)
        elif self.kind == "duplicate":
            faults.duplicate_frames(self.count)
        elif self.kind == "gap":
            faults.drop_frames(self.count)
        elif self.kind == "wserror":
            faults.ws_error(self.code)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

FAULT_HELP = """\
--fault SPEC (repeatable). SPEC is KIND[:ARG...][:every=DURATION]; without every= it fires once
at start, with every= it fires again each DURATION (e.g. 30s, 500ms, 2m).
  429:N | 500:N | 503:N | <4xx/5xx>:N   next N REST replies fail with that status
  slow:N:SECONDS                        next N REST replies are delayed
  drop:every=30s                        cut every WS connection (needs every=)
  malformed:N                           next N WS data frames are not valid JSON
  duplicate:N                           next N WS data frames are sent twice
  gap:N                                 next N WS data frames are not sent
  wserror[:CODE]                        error CODE (default 25) ends every ticker subscription
"""


def parse_duration(text: str) -> float:
    """Seconds from '30s', '500ms', '2m', '1h' or a plain number of seconds."""
    m = _DURATION.match(text.strip())
    if m is None:
        raise FaultSpecError(f"bad duration {text!r}: use e.g. 30s, 500ms, 2m")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_fault(spec: str) -> FaultSpec:
    """Parse one --fault SPEC (see FAULT_HELP)."""
    parts = [p for p in spec.strip().split(":") if p != ""]
    if not parts:
        raise FaultSpecError("empty --fault spec")
    every = None
    args: list[str] = []
    for p in parts[1:]:
        if p.startswith("every="):
            every = parse_duration(p[len("every="):])
            if every <= 0:
                raise FaultSpecError(f"{spec!r}: every= must be positive")
        else:
            args.append(p)
    kind = parts[0].lower()

    def count(i: int = 0, default: int | None = None) -> int:
        if len(args) <= i:
            if default is None:
                raise FaultSpecError(f"{spec!r}: missing count")
            return default
        try:
            n = int(args[i])
        except ValueError:
            raise FaultSpecError(f"{spec!r}: count {args[i]!r} is not an integer") from None
        if n < 1:
            raise FaultSpecError(f"{spec!r}: count must be at least 1")
        return n

    if kind.isdigit():
        status = int(kind)
        if not 400 <= status <= 599:
            raise FaultSpecError(f"{spec!r}: status must be 4xx or 5xx")
        return FaultSpec("http", count=count(), status=status, every=every)
    if kind == "slow":
        if len(args) != 2:
            raise FaultSpecError(f"{spec!r}: expected slow:N:SECONDS")
        return FaultSpec("slow", count=count(), seconds=parse_duration(args[1]), every=every)
    if kind == "drop":
        if every is None:
            raise FaultSpecError(f"{spec!r}: drop needs every=DURATION")
        return FaultSpec("drop", every=every)
    if kind in ("malformed", "duplicate", "gap"):
        return FaultSpec(kind, count=count(), every=every)
    if kind == "wserror":
        return FaultSpec("wserror", code=count(0, 25), every=every)
    raise FaultSpecError(f"{spec!r}: unknown fault kind {kind!r}\n{FAULT_HELP}")
