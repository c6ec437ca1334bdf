"""HTTP request and response records passed between the server loop and the REST handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A parsed request: `raw_path` is the path as sent (what is signed), `path` is unquoted."""

    method: str
    target: str
    raw_path: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    client: str = ""

    @classmethod
    def build(
        cls, method: str, target: str, headers: dict[str, str], client: str = ""
    ) -> HttpRequest:
        """Split the request target into path and query."""
        parts = urlsplit(target)
        return cls(
            method=method.upper(),
            target=target,
            raw_path=parts.path or "/",
            path=unquote(parts.path) or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            client=client,
        )


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A response with a JSON (or plain) body."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, obj: Any) -> HttpResponse:
        """A JSON response."""
        return cls(status, json.dumps(obj, separators=(",", ":")).encode())


def error_body(code: str, message: str, details: str | None = None) -> dict[str, Any]:
    """Kalshi's nested error shape: {"error": {"code", "message"[, "details"]}}."""
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


TOO_MANY_REQUESTS = HttpResponse.json(429, {"error": "too many requests"})
