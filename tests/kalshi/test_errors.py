"""REST error bodies and WS error codes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestor.kalshi.errors import (
    TERMINAL_WS_CODES,
    WS_ERROR_NAMES,
    KalshiAPIError,
    KalshiAuthError,
    KalshiBadRequestError,
    KalshiForbiddenError,
    KalshiNotFoundError,
    KalshiRateLimitError,
    KalshiServerError,
    KalshiWSError,
    WSAlreadySubscribedError,
    WSBadCommandError,
    WSBufferOverflowError,
    WSChannelError,
    WSInternalError,
    WSMarketNotFoundError,
    api_error,
    parse_retry_after,
    ws_error,
)


def test_nested_error_body():
    body = json.dumps(
        {"error": {"code": "invalid_price", "message": "invalid price", "service": "exchange"}}
    )
    err = api_error(400, body)
    assert isinstance(err, KalshiBadRequestError)
    assert (err.status, err.code, err.message) == (400, "invalid_price", "invalid price")


def test_nested_error_with_details():
    body = {
        "error": {
            "code": "authentication_error",
            "message": "auth failed",
            "details": "INCORRECT_API_KEY_SIGNATURE",
        }
    }
    err = api_error(401, json.dumps(body).encode())
    assert isinstance(err, KalshiAuthError)
    assert err.details == "INCORRECT_API_KEY_SIGNATURE"
    assert err.code_startswith("AUTHENTICATION")


def test_flat_error_body():
    err = api_error(404, b'{"code":"not_found","message":"market not found"}')
    assert isinstance(err, KalshiNotFoundError)
    assert (err.code, err.message) == ("not_found", "market not found")


def test_bare_msg_body():
    err = api_error(400, b'{"msg":"Query argument start_ts is required"}')
    assert err.code is None
    assert err.message == "Query argument start_ts is required"


def test_too_many_requests_body():
    err = api_error(429, b'{"error":"too many requests"}')
    assert isinstance(err, KalshiRateLimitError)
    assert err.retryable
    assert err.message == "too many requests"
    assert err.retry_after is None


def test_non_json_body_keeps_a_short_text():
    err = api_error(503, b"<html>\n  Service Unavailable  </html>" + b"x" * 1000)
    assert isinstance(err, KalshiServerError)
    assert err.message.startswith("<html> Service Unavailable </html>")
    assert len(err.message) <= 200


def test_empty_body_falls_back_to_reason():
    err = api_error(403, b"", reason="Forbidden")
    assert isinstance(err, KalshiForbiddenError)
    assert err.message == "Forbidden"


def test_401_message_explains_the_usual_causes():
    text = str(api_error(401, b'{"error":{"code":"header_timestamp_expired"}}'))
    assert "header_timestamp_expired" in text
    assert "clock" in text
    assert "KALSHI_API_KEY_ID" in text
    assert "demo keys only work on demo hosts" in text


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, KalshiBadRequestError),
        (401, KalshiAuthError),
        (403, KalshiForbiddenError),
        (404, KalshiNotFoundError),
        (429, KalshiRateLimitError),
        (500, KalshiServerError),
        (502, KalshiServerError),
        (418, KalshiAPIError),
    ],
)
def test_status_maps_to_one_class_hierarchy(status: int, cls: type[KalshiAPIError]):
    err = api_error(status, b"{}")
    assert type(err) is cls
    assert isinstance(err, KalshiAPIError)


@given(
    st.one_of(
        st.none(),
        st.binary(max_size=200),
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
            max_leaves=12,
        ).map(json.dumps),
    )
)
def test_any_error_body_gives_an_error_never_a_crash(body):
    err = api_error(500, body)
    assert isinstance(err, KalshiServerError)
    assert isinstance(err.message, str)


def test_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    err = api_error(503, b"", retry_after="7")
    assert err.retry_after == 7.0


def test_ws_error_table_is_complete_and_named():
    assert set(WS_ERROR_NAMES) == set(range(1, 29))
    assert {10, 17, 25} == TERMINAL_WS_CODES
    assert isinstance(ws_error(6), WSAlreadySubscribedError)
    assert isinstance(ws_error(16, market_ticker="X"), WSMarketNotFoundError)
    assert isinstance(ws_error(1), WSBadCommandError)
    assert isinstance(ws_error(99), KalshiWSError)


@pytest.mark.parametrize(
    ("code", "cls"), [(10, WSChannelError), (17, WSInternalError), (25, WSBufferOverflowError)]
)
def test_terminal_ws_codes_are_flagged(code: int, cls: type[KalshiWSError]):
    err = ws_error(code, "boom", command_id=4, sid=9)
    assert isinstance(err, cls)
    assert err.terminal
    assert "sid=9" in str(err)


def test_non_terminal_ws_codes_are_not_flagged():
    assert not any(ws_error(c).terminal for c in range(1, 29) if c not in (10, 17, 25))
