"""Kalshi API-key authentication: RSA-PSS signature over timestamp + METHOD + path, skew window."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from ingestor.kalshi import signing
from ingestor.sim.httpmsg import HttpResponse, error_body

log = logging.getLogger(__name__)

_KEY = signing.HEADER_KEY.lower()
_TS = signing.HEADER_TIMESTAMP.lower()
_SIG = signing.HEADER_SIGNATURE.lower()


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request was refused, with the 401 response Kalshi sends for it."""

    reason: str
    response: HttpResponse


class Authenticator:
    """Checks the three KALSHI-ACCESS-* headers against one key id and public key."""

    def __init__(
        self,
        key_id: str,
        public_key: rsa.RSAPublicKey,
        *,
        lenient_salt: bool = False,
        max_age_s: float = 30.0,
        max_future_s: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_id = key_id
        self.public_key = public_key
        self.lenient_salt = lenient_salt
        self.max_age_s = max_age_s
        self.max_future_s = max_future_s
        self.wall_clock = wall_clock

    @staticmethod
    def has_credentials(headers: Mapping[str, str]) -> bool:
        """True when any auth header is present (public reads may omit all three)."""
        return _KEY in headers or _TS in headers or _SIG in headers

    def check(self, headers: Mapping[str, str], method: str, path: str) -> AuthFailure | None:
        """None when the request is authentic; `path` must exclude the query string."""
        key_id = headers.get(_KEY)
        ts = headers.get(_TS)
        sig = headers.get(_SIG)
        if not key_id or not ts or not sig:
            return _fail(
                "missing", "authentication_error", "MISSING_AUTH_HEADERS",
                "KALSHI-ACCESS-KEY, KALSHI-ACCESS-TIMESTAMP and KALSHI-ACCESS-SIGNATURE "
                "are required",
            )
        if key_id != self.key_id:
            return _fail("unknown_key", "NOT_FOUND", None, "API key not found")
        try:
            ts_ms = int(ts)
        except ValueError:
            return _fail("bad_timestamp", "header_timestamp_expired", None,
                         "KALSHI-ACCESS-TIMESTAMP must be Unix milliseconds")
        skew_s = ts_ms / 1000 - self.wall_clock()
        if skew_s < -self.max_age_s or skew_s > self.max_future_s:
            return _fail("stale", "header_timestamp_expired", None,
                         f"request timestamp is {skew_s:+.1f}s from server time")
        if not signing.verify(self.public_key, sig, ts, method, path,
                              lenient_salt=self.lenient_salt):
            return _fail("bad_signature", "authentication_error", "INCORRECT_API_KEY_SIGNATURE",
                         "invalid signature")
        return None


def _fail(reason: str, code: str, details: str | None, message: str) -> AuthFailure:
    log.info("auth rejected reason=%s", reason)
    return AuthFailure(reason, HttpResponse.json(401, error_body(code, message, details)))
