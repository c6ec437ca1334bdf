"""kalshi-ingestor: a PostgreSQL copy of the Kalshi exchange, with its health in a browser."""

from __future__ import annotations

__version__ = "0.1.0"
