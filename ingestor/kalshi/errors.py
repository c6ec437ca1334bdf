"""Kalshi error classes and error-body parsing (REST bodies, WS error codes): pure, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


class KalshiError(Exception):
    """Base class of every error raised by the Kalshi protocol layer and clients."""


class KalshiAPIError(KalshiError):
    """The REST API answered with an error status."""

    retryable = False

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        details: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.url = url
        self.retry_after = retry_after
        self.attempts = 1
        super().__init__(self._text())

    def _text(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.code:
            parts.append(f"code={self.code}")
        if self.message:
            parts.append(self.message)
        if self.details and self.details != self.message:
            parts.append(f"({self.details})")
        if self.url:
            parts.append(f"url={self.url}")
        return " ".join(parts)

    def code_startswith(self, prefix: str) -> bool:
        """Kalshi codes may embed ids; compare by prefix, case-insensitively."""
        return (self.code or "").lower().startswith(prefix.lower())


class KalshiBadRequestError(KalshiAPIError):
    """400: bad parameters."""


class KalshiAuthError(KalshiAPIError):
    """401: the request signature, key id or timestamp was not accepted."""

    HINT = (
        "check that the machine clock is in sync (NTP; Kalshi rejects timestamps about 30 s off), "
        "that KALSHI_API_KEY_ID matches the key in KALSHI_PRIVATE_KEY_PEM_PATH, and that the key "
        "belongs to the environment of KALSHI_HOST (demo keys only work on demo hosts, "
        "production keys only on production)"
    )

    def _text(self) -> str:
        return f"{super()._text()}; {self.HINT}"


class KalshiForbiddenError(KalshiAPIError):
    """403: the account or key may not use this endpoint."""

    HINT = "the key lacks permission for this endpoint, or a proxy refused the request"

    def _text(self) -> str:
        return f"{super()._text()}; {self.HINT}"


class KalshiNotFoundError(KalshiAPIError):
    """404: unknown ticker or path (or a market archived to /historical)."""


class KalshiRateLimitError(KalshiAPIError):
    """429: the token bucket is empty."""

    retryable = True


class KalshiServerError(KalshiAPIError):
    """5xx: server-side failure."""

    retryable = True


class KalshiTransportError(KalshiError):
    """The request never got an HTTP answer (timeout, connection refused or reset)."""

    retryable = True

    def __init__(self, message: str, *, url: str | None = None) -> None:
        self.url = url
        self.attempts = 1
        super().__init__(f"{message} url={url}" if url else message)


class KalshiResponseError(KalshiError):
    """A 2xx reply whose body is not the JSON shape the endpoint documents."""


class KalshiPagingError(KalshiError):
    """The server returned a cursor that would loop forever."""


_STATUS_CLASSES: dict[int, type[KalshiAPIError]] = {
    400: KalshiBadRequestError,
    401: KalshiAuthError,
    403: KalshiForbiddenError,
    404: KalshiNotFoundError,
    429: KalshiRateLimitError,
}

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def error_class(status: int) -> type[KalshiAPIError]:
    """The KalshiAPIError subclass for an HTTP status."""
    cls = _STATUS_CLASSES.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return KalshiServerError
    return KalshiAPIError


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def parse_error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(code, message, details) from the three Kalshi error shapes, or Nones when unrecognised."""
    if not isinstance(body, Mapping):
        return None, None, None
    err = body.get("error")
    if isinstance(err, Mapping):
        return (
            _text(err.get("code")),
            _text(err.get("message") or err.get("msg")),
            _text(err.get("details")),
        )
    if isinstance(err, str):
        # {"error": "too many requests"}
        return _text(body.get("code")), err, _text(body.get("details"))
    if "code" in body or "message" in body:
        return _text(body.get("code")), _text(body.get("message")), _text(body.get("details"))
    if "msg" in body:
        return _text(body.get("code")), _text(body.get("msg")), None
    return None, None, None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def api_error(
    status: int,
    body: bytes | str | None,
    *,
    url: str | None = None,
    retry_after: str | None = None,
    reason: str | None = None,
) -> KalshiAPIError:
    """Build the KalshiAPIError subclass for an error reply from its status and raw body."""
    parsed: Any = None
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
    code, message, details = parse_error_fields(parsed)
    if message is None:
        short = " ".join(raw.split())[:200]
        message = short or reason or ""
    return error_class(status)(
        status,
        code,
        message,
        details=details,
        url=url,
        retry_after=parse_retry_after(retry_after),
    )


# ---- WebSocket error codes (§5.4) ----------------------------------------------------------

WS_ERROR_NAMES: dict[int, str] = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    6: "Already subscribed",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    9: "Authentication required",
    10: "Channel error",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    17: "Internal error",
    18: "Command timeout",
    19: "shard_factor must be > 0",
    20: "shard_factor is required with shard_key",
    21: "shard_key must be >= 0 and < shard_factor",
    22: "shard_factor must be <= 100",
    23: "Match IDs required",
    24: "Index IDs required",
    25: "Subscription buffer overflow",
    26: "Subscription market limit exceeded",
    27: "Too many requests",
    28: "Underlying tickers required",
}

TERMINAL_WS_CODES = frozenset({10, 17, 25})


class KalshiWSError(KalshiError):
    """A WS `error` reply; `code` follows Kalshi's table, `terminal` means resubscribe."""

    code: int = 0

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        command_id: int | None = None,
        sid: int | None = None,
        market_ticker: str | None = None,
    ) -> None:
        self.code = code
        self.message = message or WS_ERROR_NAMES.get(code, "unknown error")
        self.command_id = command_id
        self.sid = sid
        self.market_ticker = market_ticker
        text = f"WS error code={code} ({WS_ERROR_NAMES.get(code, 'unknown')}): {self.message}"
        if command_id:
            text += f" id={command_id}"
        if sid is not None:
            text += f" sid={sid}"
        if market_ticker:
            text += f" market_ticker={market_ticker}"
        super().__init__(text)

    @property
    def terminal(self) -> bool:
        """True for codes after which the subscription is gone and must be re-created."""
        return self.code in TERMINAL_WS_CODES


class WSBadCommandError(KalshiWSError):
    """Codes 1-5, 11-15, 19-24, 28: the command was malformed (a bug on our side)."""


class WSAlreadySubscribedError(KalshiWSError):
    """Code 6."""


class WSUnknownSubscriptionError(KalshiWSError):
    """Code 7."""


class WSUnknownChannelError(KalshiWSError):
    """Code 8."""


class WSAuthenticationRequiredError(KalshiWSError):
    """Code 9."""


class WSChannelError(KalshiWSError):
    """Code 10 (terminal)."""


class WSMarketNotFoundError(KalshiWSError):
    """Code 16."""


class WSInternalError(KalshiWSError):
    """Code 17 (terminal)."""


class WSCommandTimeoutError(KalshiWSError):
    """Code 18: the server timed out processing the command."""


class WSBufferOverflowError(KalshiWSError):
    """Code 25 (terminal): the client read too slowly and the subscription was dropped."""


class WSMarketLimitError(KalshiWSError):
    """Code 26: too many markets on one subscription."""


class WSTooManyRequestsError(KalshiWSError):
    """Code 27: command rate exceeded."""


_WS_CLASSES: dict[int, type[KalshiWSError]] = {
    6: WSAlreadySubscribedError,
    7: WSUnknownSubscriptionError,
    8: WSUnknownChannelError,
    9: WSAuthenticationRequiredError,
    10: WSChannelError,
    16: WSMarketNotFoundError,
    17: WSInternalError,
    18: WSCommandTimeoutError,
    25: WSBufferOverflowError,
    26: WSMarketLimitError,
    27: WSTooManyRequestsError,
}
for _code in (1, 2, 3, 4, 5, 11, 12, 13, 14, 15, 19, 20, 21, 22, 23, 24, 28):
    _WS_CLASSES[_code] = WSBadCommandError


def ws_error(
    code: int,
    message: str | None = None,
    *,
    command_id: int | None = None,
    sid: int | None = None,
    market_ticker: str | None = None,
) -> KalshiWSError:
    """The named KalshiWSError subclass for a WS error code."""
    cls = _WS_CLASSES.get(code, KalshiWSError)
    return cls(code, message, command_id=command_id, sid=sid, market_ticker=market_ticker)


class WSConnectionError(KalshiError):
    """The WS connection is not open or was lost while a command waited for its reply."""


class WSReplyTimeoutError(WSConnectionError):
    """No reply to a WS command within the reply timeout."""


class WSLivenessError(WSConnectionError):
    """No frame arrived within the liveness window."""
