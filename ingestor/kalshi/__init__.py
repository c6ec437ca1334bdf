"""Kalshi Trade API v2: pure protocol (signing, models, parsing) and thin REST / WS clients."""

from __future__ import annotations

from ingestor.kalshi.clients import build_rest_client, build_signer, build_ws_client
from ingestor.kalshi.endpoints import DEFAULT_REST_BASE, derive_ws_url, resolve_ws_url
from ingestor.kalshi.errors import KalshiAPIError, KalshiError, KalshiWSError
from ingestor.kalshi.ratelimit import TokenBucket, default_limiter, server_matched
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.kalshi.retry import Backoff, RetryPolicy
from ingestor.kalshi.signing import Signer
from ingestor.kalshi.ws import ConnectionEvent, KalshiWSClient, open_ws_client

__all__ = [
    "DEFAULT_REST_BASE",
    "Backoff",
    "ConnectionEvent",
    "KalshiAPIError",
    "KalshiError",
    "KalshiRestClient",
    "KalshiWSClient",
    "KalshiWSError",
    "RetryPolicy",
    "Signer",
    "TokenBucket",
    "build_rest_client",
    "build_signer",
    "build_ws_client",
    "default_limiter",
    "derive_ws_url",
    "open_ws_client",
    "resolve_ws_url",
    "server_matched",
]
