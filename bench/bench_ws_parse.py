"""Ticker frames parsed per second on one core, against json.loads alone as the baseline.

    .venv/bin/python bench/bench_ws_parse.py [--frames 200000] [--repeat 3]

Prints msgs/s for: json.loads only; parse_frame (the client's path: JSON, envelope, fast Ticker
with exact Decimals and timestamps); the same for legacy integer frames; and full pydantic
validation of the payload, for comparison. Target: parse_frame >= 50,000 msgs/s.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from synthetic_ticks import ticker_frames

from ingestor.kalshi.models import TickerMessage
from ingestor.kalshi.ws_protocol import WSStats, parse_frame

TARGET = 50_000


def current_frames(n: int, rng: random.Random) -> list[str]:
    return ticker_frames(n, rng, start_ms=1_767_229_200_000, step_ms=(0, 50))


def legacy_frames(n: int, rng: random.Random) -> list[str]:
    frames = []
    for i in range(n):
        bid = rng.randint(0, 98)
        msg = {
            "market_ticker": f"KXBENCH-26JAN01-T{i % 500}",
            "price": rng.randint(1, 99),
            "yes_bid": bid,
            "yes_ask": bid + 1,
            "volume": rng.randint(0, 10**7),
            "open_interest": rng.randint(0, 10**6),
            "dollar_volume": rng.randint(0, 10**6),
            "dollar_open_interest": rng.randint(0, 10**6),
            "ts": 1_767_229_200 + i,
        }
        frames.append(json.dumps({"type": "ticker", "sid": 2, "msg": msg}, separators=(",", ":")))
    return frames


def best_rate(fn: Callable[[list[str]], None], frames: list[str], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        fn(frames)
        elapsed = time.perf_counter() - start
        best = max(best, len(frames) / elapsed)
    return best


def run_json(frames: list[str]) -> None:
    loads = json.loads
    for f in frames:
        loads(f)


def run_parse(frames: list[str]) -> None:
    stats = WSStats()
    for f in frames:
        parse_frame(f, stats)
    assert stats.malformed == 0


def run_pydantic(frames: list[str]) -> None:
    loads = json.loads
    validate = TickerMessage.model_validate
    for f in frames:
        validate(loads(f)["msg"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(1)
    current = current_frames(args.frames, rng)
    legacy = legacy_frames(args.frames, rng)

    baseline = best_rate(run_json, current, args.repeat)
    parsed = best_rate(run_parse, current, args.repeat)
    parsed_legacy = best_rate(run_parse, legacy, args.repeat)
    full = best_rate(run_pydantic, current, args.repeat)

    print(f"frames per run            {args.frames}")
    print(f"json.loads only           {baseline:12,.0f} msgs/s")
    print(
        f"parse_frame (current)     {parsed:12,.0f} msgs/s  ratio to json.loads "
        f"{parsed / baseline:.2f}"
    )
    print(
        f"parse_frame (legacy ints) {parsed_legacy:12,.0f} msgs/s  ratio to json.loads "
        f"{parsed_legacy / baseline:.2f}"
    )
    print(
        f"pydantic TickerMessage    {full:12,.0f} msgs/s  ratio to json.loads {full / baseline:.2f}"
    )
    print(
        f"target                    {TARGET:12,.0f} msgs/s  parse_frame/target "
        f"{parsed / TARGET:.2f}"
    )


if __name__ == "__main__":
    main()
