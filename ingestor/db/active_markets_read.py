"""Read-only view of active_markets for the ws role (the rest role owns the writes)."""

from __future__ import annotations

import psycopg

from ingestor.stream.selection import Candidate


def candidates(conn: psycopg.Connection) -> list[Candidate]:
    """Every active market with its close time, in (close_time, ticker) order."""
    rows = conn.execute(
        "SELECT ticker, close_time FROM active_markets ORDER BY close_time NULLS LAST, ticker"
    ).fetchall()
    return [Candidate(ticker, close_time) for ticker, close_time in rows]
