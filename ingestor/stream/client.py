"""The ws role's Kalshi WS client, built from WsSettings (credentials are required)."""

from __future__ import annotations

from typing import Any

from ingestor.config import WsSettings
from ingestor.errors import ConfigurationError
from ingestor.kalshi.clients import CredentialsError, build_signer, build_ws_client
from ingestor.kalshi.endpoints import EndpointError
from ingestor.kalshi.signing import PrivateKeyError
from ingestor.kalshi.ws import KalshiWSClient

# Items the client may hold between its socket reader and our receive loop.
CLIENT_QUEUE_SIZE = 10_000
# Upper bound on waiting for a command reply (and for the liveness probe after silence).
MAX_REPLY_SECONDS = 10.0


def build_client(settings: WsSettings, **options: Any) -> KalshiWSClient:
    """A client for KALSHI_WS_URL (or the URL derived from KALSHI_HOST); ConfigurationError
    when the credentials are missing or unusable."""
    if not settings.has_credentials:
        raise ConfigurationError(
            "the ws role needs KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PEM_PATH: Kalshi "
            "requires a signed WebSocket handshake"
        )
    try:
        signer = build_signer(settings.kalshi_api_key_id, settings.kalshi_private_key_pem_path)
        defaults: dict[str, Any] = {
            "batch_size": settings.ws_batch_size,
            "liveness_timeout": settings.ws_stale_seconds,
            "reply_timeout": min(MAX_REPLY_SECONDS, settings.ws_stale_seconds),
            "queue_size": CLIENT_QUEUE_SIZE,
        }
        return build_ws_client(settings, signer=signer, **{**defaults, **options})
    except (CredentialsError, PrivateKeyError, EndpointError) as exc:
        raise ConfigurationError(str(exc)) from None
