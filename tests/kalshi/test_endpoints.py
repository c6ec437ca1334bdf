"""Host configuration and URL building."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingestor.kalshi.endpoints import (
    DEFAULT_REST_BASE,
    PRODUCTION_WS_URL,
    EndpointError,
    build_url,
    derive_ws_url,
    normalize_rest_base,
    normalize_ws_url,
    path_segment,
    resolve_ws_url,
)


@pytest.mark.parametrize(
    ("rest", "ws"),
    [
        (DEFAULT_REST_BASE, PRODUCTION_WS_URL),
        (
            "https://external-api.kalshi.com/trade-api/v2/",
            "wss://external-api-ws.kalshi.com/trade-api/ws/v2",
        ),
        (
            "https://external-api.demo.kalshi.co/trade-api/v2",
            "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
        ),
        (
            "https://api.elections.kalshi.com/trade-api/v2",
            "wss://api.elections.kalshi.com/trade-api/ws/v2",
        ),
        ("https://demo-api.kalshi.co/trade-api/v2", "wss://demo-api.kalshi.co/trade-api/ws/v2"),
        ("http://127.0.0.1:8123/trade-api/v2", "ws://127.0.0.1:8123/trade-api/ws/v2"),
        ("http://localhost:9000/trade-api/v2", "ws://localhost:9000/trade-api/ws/v2"),
    ],
)
def test_derive_ws_url(rest: str, ws: str):
    assert derive_ws_url(rest) == ws


def test_default_rest_base_is_production_external_api():
    assert DEFAULT_REST_BASE == "https://external-api.kalshi.com/trade-api/v2"


@pytest.mark.parametrize("bad", ["ftp://x/trade-api/v2", "external-api.kalshi.com", "https://"])
def test_bad_rest_base_names_the_variable(bad: str):
    with pytest.raises(EndpointError, match="KALSHI_HOST"):
        normalize_rest_base(bad)


def test_rest_base_with_query_is_refused():
    with pytest.raises(EndpointError, match="query"):
        normalize_rest_base("https://h/trade-api/v2?x=1")


def test_ws_url_accepts_http_schemes_and_keeps_explicit_url():
    assert normalize_ws_url("http://127.0.0.1:1/trade-api/ws/v2") == (
        "ws://127.0.0.1:1/trade-api/ws/v2"
    )
    assert normalize_ws_url("https://h/x") == "wss://h/x"
    assert resolve_ws_url(DEFAULT_REST_BASE, "ws://sim:1/trade-api/ws/v2") == (
        "ws://sim:1/trade-api/ws/v2"
    )
    assert resolve_ws_url("http://127.0.0.1:5/trade-api/v2", None) == (
        "ws://127.0.0.1:5/trade-api/ws/v2"
    )
    with pytest.raises(EndpointError, match="KALSHI_WS_URL"):
        normalize_ws_url("tcp://h/x")


def test_build_url_renders_query_values():
    when = datetime(2024, 1, 1, tzinfo=UTC)
    url = build_url(
        "https://h/trade-api/v2/",
        "/markets",
        {
            "limit": 5,
            "with_nested_markets": True,
            "mve_filter": None,
            "tickers": ["A-1", "B.2"],
            "min_close_ts": when,
        },
    )
    assert url == (
        "https://h/trade-api/v2/markets?limit=5&with_nested_markets=true"
        "&tickers=A-1,B.2&min_close_ts=1704067200"
    )
    assert build_url("https://h/trade-api/v2", "exchange/status") == (
        "https://h/trade-api/v2/exchange/status"
    )


def test_path_segment_quotes_slashes_and_refuses_empty():
    assert path_segment("KX/EVIL") == "KX%2FEVIL"
    assert path_segment("INXD-23SEP14-B4487.5") == "INXD-23SEP14-B4487.5"
    with pytest.raises(ValueError):
        path_segment("")
