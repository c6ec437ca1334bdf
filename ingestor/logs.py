"""Structured logging: key=value text or one JSON object per line, with secrets masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_SECRET_PATTERNS = (
    re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+(@)"),
    re.compile(r"(amqps?://[^:/@\s]+:)[^@\s]+(@)"),
    re.compile(r"(password\s*[=:]\s*)\S+", re.IGNORECASE),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----)"),
)


def mask_secrets(text: str) -> str:
    """Hide URL passwords, password=... pairs and PEM bodies in a log line."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***\2" if pattern.groups == 2 else r"\1***", text)
    return text


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        stamp = f"{ts}.{int(record.msecs):03d}Z"
        line = f"{stamp} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return mask_secrets(line)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_secrets(record.getMessage()),
        }
        if record.exc_info:
            out["exc"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(out, separators=(",", ":"))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once for this process (stderr, masked)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "hpack", "hypercorn.access", "trio-websocket"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
