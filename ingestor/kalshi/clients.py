"""Build the REST and WS clients from a role's Kalshi settings (KALSHI_* variables)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol

import httpx

from ingestor.kalshi.endpoints import normalize_rest_base, resolve_ws_url
from ingestor.kalshi.ratelimit import TokenBucket, configure_default_limiter
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.kalshi.retry import RetryPolicy
from ingestor.kalshi.signing import Signer, load_private_key
from ingestor.kalshi.ws import KalshiWSClient

log = logging.getLogger(__name__)


class KalshiSettingsLike(Protocol):
    """The settings fields the clients read (see ingestor.config.KalshiSettings)."""

    kalshi_api_key_id: str | None
    kalshi_private_key_pem_path: Path | None
    kalshi_host: str
    kalshi_rest_rate_per_sec: float
    kalshi_rest_burst: int
    kalshi_rest_retries: int
    kalshi_rest_timeout_seconds: float


class CredentialsError(ValueError):
    """KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PEM_PATH are inconsistent."""


def build_signer(key_id: str | None, pem_path: str | os.PathLike[str] | None) -> Signer | None:
    """A Signer when both credentials are set, None when neither is; an error otherwise."""
    if not key_id and not pem_path:
        return None
    if not key_id or not pem_path:
        raise CredentialsError(
            "KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PEM_PATH must be set together"
        )
    return Signer(key_id=key_id, key=load_private_key(pem_path))


def build_rest_client(
    settings: KalshiSettingsLike,
    *,
    signer: Signer | None = None,
    limiter: TokenBucket | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> KalshiRestClient:
    """REST client for KALSHI_HOST; configures the process-wide limiter from the settings."""
    if signer is None:
        signer = build_signer(settings.kalshi_api_key_id, settings.kalshi_private_key_pem_path)
    if limiter is None:
        limiter = configure_default_limiter(
            settings.kalshi_rest_rate_per_sec, settings.kalshi_rest_burst
        )
    base = normalize_rest_base(settings.kalshi_host)
    log.info(
        "kalshi rest client host=%s signed=%s rate=%.1f burst=%d",
        base,
        signer is not None,
        limiter.rate,
        int(limiter.burst),
    )
    return KalshiRestClient(
        base,
        signer=signer,
        limiter=limiter,
        retry=RetryPolicy(max_attempts=settings.kalshi_rest_retries + 1),
        transport=transport,
        timeout=settings.kalshi_rest_timeout_seconds,
    )


def build_ws_client(
    settings: KalshiSettingsLike,
    *,
    ws_url: str | None = None,
    signer: Signer | None = None,
    **options: Any,
) -> KalshiWSClient:
    """WS client for KALSHI_WS_URL (or the URL derived from KALSHI_HOST)."""
    if signer is None:
        signer = build_signer(settings.kalshi_api_key_id, settings.kalshi_private_key_pem_path)
    url = resolve_ws_url(settings.kalshi_host, ws_url or getattr(settings, "kalshi_ws_url", None))
    log.info("kalshi ws client url=%s signed=%s", url, signer is not None)
    return KalshiWSClient(url, signer, **options)
