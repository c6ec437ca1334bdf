"""Kalshi hosts, paths and URL building: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

PRODUCTION_REST_BASE = "https://external-api.kalshi.com/trade-api/v2"
DEMO_REST_BASE = "https://external-api.demo.kalshi.co/trade-api/v2"
DEFAULT_REST_BASE = PRODUCTION_REST_BASE

PRODUCTION_WS_URL = "wss://external-api-ws.kalshi.com/trade-api/ws/v2"
DEMO_WS_URL = "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2"

WS_PATH = "/trade-api/ws/v2"
REST_PATH = "/trade-api/v2"

# REST host -> WS host, where Kalshi serves the socket on a different name.
_WS_HOSTS = {
    "external-api.kalshi.com": "external-api-ws.kalshi.com",
    "external-api.demo.kalshi.co": "external-api-ws.demo.kalshi.co",
}
_SCHEMES = {"https": "wss", "http": "ws", "wss": "wss", "ws": "ws"}


class EndpointError(ValueError):
    """A configured Kalshi URL cannot be used."""


def normalize_rest_base(rest_base: str, env_name: str = "KALSHI_HOST") -> str:
    """Validate a REST base URL (http/https, with host) and strip a trailing slash."""
    parts = urlsplit(rest_base.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(
            f"{env_name}={rest_base!r}: expected an http(s) URL such as {DEFAULT_REST_BASE}"
        )
    if parts.query or parts.fragment:
        raise EndpointError(f"{env_name}={rest_base!r}: must not carry a query or fragment")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def derive_ws_url(rest_base: str) -> str:
    """The WS URL that belongs to a REST base (https->wss, external-api->external-api-ws)."""
    parts = urlsplit(normalize_rest_base(rest_base))
    host = parts.hostname or ""
    netloc = parts.netloc
    ws_host = _WS_HOSTS.get(host.lower())
    if ws_host is not None:
        netloc = netloc.replace(host, ws_host, 1)
    return urlunsplit((_SCHEMES[parts.scheme], netloc, WS_PATH, "", ""))


def normalize_ws_url(ws_url: str, env_name: str = "KALSHI_WS_URL") -> str:
    """Validate a WS URL; http(s) schemes are accepted and mapped to ws(s)."""
    parts = urlsplit(ws_url.strip())
    scheme = _SCHEMES.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise EndpointError(
            f"{env_name}={ws_url!r}: expected a ws(s) URL such as {PRODUCTION_WS_URL}"
        )
    return urlunsplit((scheme, parts.netloc, parts.path or WS_PATH, parts.query, ""))


def resolve_ws_url(rest_base: str, ws_url: str | None) -> str:
    """KALSHI_WS_URL when set, else the URL derived from KALSHI_HOST."""
    if ws_url:
        return normalize_ws_url(ws_url)
    return derive_ws_url(rest_base)


def path_segment(value: str) -> str:
    """Quote a ticker for use as one path segment."""
    if not value:
        raise ValueError("empty path segment")
    return quote(value, safe="")


def query_value(value: Any) -> str:
    """Render one query value the way Kalshi expects (bools lower-case, lists comma-joined)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return str(int(value.timestamp()))
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return ",".join(query_value(v) for v in value)
    return str(value)


def query_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Drop None values and render the rest with `query_value`."""
    if not params:
        return {}
    return {k: query_value(v) for k, v in params.items() if v is not None}


def build_url(base: str, path: str, params: Mapping[str, Any] | None = None) -> str:
    """Join a REST base and an endpoint path, with an optional query string."""
    url = base.rstrip("/") + "/" + path.lstrip("/")
    query = urlencode(query_params(params), safe=",")
    return f"{url}?{query}" if query else url
