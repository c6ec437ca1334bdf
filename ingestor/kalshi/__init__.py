"""Kalshi Trade API v2: protocol (pure functions and models) and thin httpx / trio-websocket clients."""
