"""Child output: split into bounded lines, mask secrets, format as `[role] line` or JSON."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, Literal

from ingestor.logs import mask_secrets

MAX_LINE_BYTES = 64 * 1024
TRUNCATED_MARK = " [line truncated]"
MASK = "***"
MIN_SECRET_LENGTH = 4
LogFormat = Literal["text", "json"]
LineSink = Callable[[str], None]

_SECRET_KEYS = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key", re.I)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")


class LineSplitter:
    """Bytes in, complete lines out; a line longer than `max_bytes` is cut and marked."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[str]:
        """Lines completed by `data`; the partial tail is kept (bounded) for the next call."""
        out: list[str] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl == -1:
                self._add_partial(data[start:], out)
                return out
            if self._discarding:
                self._discarding = False
            else:
                self._buf += data[start:nl]
                out.append(self._take())
            start = nl + 1

    def flush(self) -> list[str]:
        """The unterminated last line, if any (at end of output)."""
        if self._discarding or not self._buf:
            self._discarding = False
            self._buf.clear()
            return []
        return [self._take()]

    def _add_partial(self, piece: bytes, out: list[str]) -> None:
        if self._discarding or not piece:
            return
        self._buf += piece
        if len(self._buf) > self.max_bytes:
            out.append(self._take())
            self._discarding = True

    def _take(self) -> str:
        raw = bytes(self._buf)
        self._buf.clear()
        truncated = len(raw) > self.max_bytes
        if truncated:
            raw = raw[: self.max_bytes]
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        return text + TRUNCATED_MARK if truncated else text


class SecretMasker:
    """Replace known secret values (and the patterns `mask_secrets` knows) with ***."""

    def __init__(self, secrets: Iterable[str] = (), min_length: int = MIN_SECRET_LENGTH) -> None:
        # Shorter values would mangle ordinary output; secrets that short are not secrets.
        self._secrets = sorted({s for s in secrets if len(s) >= min_length}, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(s) for s in self._secrets)) if self._secrets else None
        )
        self._prefixes = sorted(
            {s[:n] for s in self._secrets for n in range(min_length, len(s))},
            key=len,
            reverse=True,
        )

    def mask(self, text: str) -> str:
        """`text` with every known secret value and URL/DSN/PEM secret replaced."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        text = mask_secrets(text)
        if text.endswith(TRUNCATED_MARK):
            text = self._mask_cut_secret(text)
        return text

    def _mask_cut_secret(self, text: str) -> str:
        # A secret cut by truncation would slip past the literal match: hide its prefix too.
        body = text[: -len(TRUNCATED_MARK)]
        for prefix in self._prefixes:
            if body.endswith(prefix):
                return body[: -len(prefix)] + MASK + TRUNCATED_MARK
        return text

    def mask_json(self, value: Any) -> Any:
        """A decoded JSON value with secrets masked in every string, and values of secret keys."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, list):
            return [self.mask_json(v) for v in value]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                key = self.mask(str(k))
                if _SECRET_KEYS.search(key) and isinstance(v, str) and v:
                    out[key] = MASK
                else:
                    out[key] = self.mask_json(v)
            return out
        return value


class PemBlockFilter:
    """Hide the body lines of a private key printed over several lines."""

    def __init__(self) -> None:
        self._inside = False

    def filter(self, line: str) -> str:
        """The line, or *** when it sits inside a BEGIN/END PRIVATE KEY block."""
        if self._inside:
            end = _PEM_END.search(line)
            if end is None:
                return MASK
            self._inside = False
            return MASK + line[end.start() :]
        begin = _PEM_BEGIN.search(line)
        if begin and not _PEM_END.search(line, begin.end()):
            self._inside = True
            return line[: begin.end()] + MASK
        return line


def utc_timestamp(now: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds and Z."""
    t = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def format_line(
    role: str,
    line: str,
    fmt: LogFormat,
    masker: SecretMasker,
    now: float | None = None,
) -> str:
    """One forwarded output line, masked: `[role] line`, or JSON `{"ts","role","line"}`."""
    if fmt == "text":
        return f"[{role}] {masker.mask(line)}"
    payload: Any = None
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            decoded = json.loads(stripped)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            payload = masker.mask_json(decoded)
    if payload is None:
        payload = masker.mask(line)
    record = {"ts": utc_timestamp(now), "role": role, "line": payload}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class StreamSink:
    """Write formatted lines to a binary stream (the supervisor's stdout), one flush each."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer

    def __call__(self, line: str) -> None:
        self._stream.write(line.encode("utf-8", errors="replace") + b"\n")
        self._stream.flush()
