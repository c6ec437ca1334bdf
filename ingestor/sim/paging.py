"""Opaque cursors and page slicing over lists ordered by a stable integer key."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class BadCursorError(ValueError):
    """The cursor was not issued by this listing."""


def encode(kind: str, position: int) -> str:
    """An opaque cursor for a listing `kind` resuming after `position`."""
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode(kind: str, cursor: str) -> int:
    """The position inside a cursor from `encode(kind, ...)`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got_kind, _, pos = raw.partition(":")
        if got_kind != kind:
            raise BadCursorError(f"cursor belongs to another listing ({got_kind})")
        return int(pos)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursorError(f"invalid cursor: {exc}") from None


def page(
    items: Sequence[T], key: Callable[[T], int], kind: str, cursor: str | None, limit: int
) -> tuple[list[T], str]:
    """Items after the cursor (ascending key), at most `limit`, and the next cursor or ""."""
    after = decode(kind, cursor) if cursor else None
    out: list[T] = []
    more = False
    for item in items:
        if after is not None and key(item) <= after:
            continue
        if len(out) == limit:
            more = True
            break
        out.append(item)
    next_cursor = encode(kind, key(out[-1])) if more and out else ""
    return out, next_cursor
