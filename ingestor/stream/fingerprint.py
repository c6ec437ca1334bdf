"""Fingerprints: a replayed frame maps to the same row, a different value to a different row.

Tick fingerprint (market_ticks.fingerprint, bigint): the first 8 bytes of BLAKE2b over
"v1", ticker, exchange time in microseconds, every value column in canonical form (plain
decimal text without trailing fractional zeros, so 0.56 and 0.5600 are equal; None as "~")
and the canonical JSON of `extra`, joined by U+001F, read as a signed big-endian integer.

Lifecycle fingerprint (lifecycle_events.fingerprint, text): hex SHA-256 of the message type and
the canonical JSON of its payload; identical payloads are the same event.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

_SEP = "\x1f"
MISSING = "~"  # canonical text of a missing value
_blake2b = hashlib.blake2b


def canonical_text(text: str) -> str:
    """One text per numeric value, from its decimal text: 0.5600 -> 0.56, 100.00 -> 100,
    1E+2 -> 100, -0.00 -> 0."""
    if "E" in text or "e" in text:
        text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "-0":
        return "0"
    return text


def canonical_texts(texts: Sequence[str | None], joined: str | None = None) -> list[str]:
    """canonical_text of each value text (MISSING for None). `joined` (the texts joined by any
    separator) lets the usual plain non-negative decimals take a fast path."""
    if joined is None:
        joined = "\t".join([t for t in texts if t is not None])
    if "E" in joined or "e" in joined or "-" in joined:
        return [MISSING if t is None else canonical_text(t) for t in texts]
    return [
        MISSING if t is None else (t.rstrip("0").rstrip(".") if "." in t else t) for t in texts
    ]


def canonical_decimal(value: Decimal | int) -> str:
    """canonical_text of a Decimal or int."""
    return canonical_text(str(value))


def fingerprint_of_texts(
    ticker: str, ts_us: int, canonical: Sequence[str], extra_json: str | None
) -> int:
    """The tick fingerprint from canonical value texts ("~" for None), in column order."""
    data = _SEP.join(
        ("v1", ticker, str(ts_us), *canonical, MISSING if extra_json is None else extra_json)
    ).encode("utf-8", "surrogatepass")
    return int.from_bytes(_blake2b(data, digest_size=8).digest(), "big", signed=True)


def tick_fingerprint(
    ticker: str, ts_us: int, values: Sequence[Decimal | int | None], extra_json: str | None
) -> int:
    """Signed 64-bit fingerprint of one tick's content (never of when it was received)."""
    canonical = [MISSING if v is None else canonical_decimal(v) for v in values]
    return fingerprint_of_texts(ticker, ts_us, canonical, extra_json)


def lifecycle_fingerprint(msg_type: str, payload_json: str, received_second: str = "") -> str:
    """Hex SHA-256 of a lifecycle message's type, canonical payload JSON and, for messages
    that carry no time of their own, the second it was received (so a later real repeat,
    such as a second `deactivated`, is a new row while a duplicated frame is not)."""
    data = f"{msg_type}{_SEP}{payload_json}{_SEP}{received_second}".encode(
        "utf-8", "surrogatepass"
    )
    return hashlib.sha256(data).hexdigest()


# \\ pairs are matched first so an escaped backslash is never read as the start of \uXXXX.
_BAD_ESCAPES = re.compile(
    r"\\\\|\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|\\ud[89a-f][0-9a-f]{2}|\\u0000"
)


def _fix_escape(m: re.Match[str]) -> str:
    text = m.group(0)
    return text if len(text) in (2, 12) else "\\ufffd"


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> str:
    """Sorted, compact, ASCII JSON that PostgreSQL's jsonb accepts.

    NaN/Infinity become strings; NUL characters and unpaired surrogates (which jsonb rejects)
    become U+FFFD.
    """
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    if "\\u0000" in text or "\\ud" in text:
        text = _BAD_ESCAPES.sub(_fix_escape, text)
    return text
