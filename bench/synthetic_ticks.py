"""Synthetic current-shape ticker frames shared by the WS benchmarks."""

from __future__ import annotations

import json
import random
import time


def dollars(cents: int) -> str:
    """A `*_dollars` string as Kalshi sends it: 45 -> '0.4500'."""
    return f"{cents // 100}.{cents % 100:02d}00"


def ticker_frames(
    n: int,
    rng: random.Random,
    *,
    markets: int = 500,
    start_ms: int | None = None,
    step_ms: tuple[int, int] = (1, 3),
) -> list[str]:
    """`n` ticker frames over `markets` markets, `step_ms` apart (default: ending about now)."""
    ts_ms = int(time.time() * 1000) - n * 2 if start_ms is None else start_ms
    out = []
    for i in range(n):
        bid = rng.randint(0, 98)
        ts_ms += rng.randint(*step_ms)
        msg = {
            "market_ticker": f"KXBENCH-26JAN01-T{i % markets}",
            "market_id": f"00000000-0000-4000-8000-{i % markets:012d}",
            "price_dollars": dollars(rng.randint(1, 99)),
            "yes_bid_dollars": dollars(bid),
            "yes_ask_dollars": dollars(bid + 1),
            "yes_bid_size_fp": f"{rng.randint(0, 99999)}.{rng.randint(0, 99):02d}",
            "yes_ask_size_fp": f"{rng.randint(0, 99999)}.00",
            "last_trade_size_fp": f"{rng.randint(1, 500)}.00",
            "volume_fp": f"{rng.randint(0, 10**7)}.00",
            "open_interest_fp": f"{rng.randint(0, 10**6)}.00",
            "dollar_volume": rng.randint(0, 10**6),
            "dollar_open_interest": rng.randint(0, 10**6),
            "ts": ts_ms // 1000,
            "ts_ms": ts_ms,
            "time": "2026-01-01T01:00:00.000Z",
        }
        out.append(json.dumps({"type": "ticker", "sid": 2, "msg": msg}, separators=(",", ":")))
    return out
