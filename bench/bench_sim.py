"""Throughput of the simulator: WS ticker frames/s to one client and REST requests/s.

Runs `python -m ingestor.sim` in a child process (so server and client use separate cores)
and measures from this process with trio-websocket and httpx:

    python bench/bench_sim.py --tick-rate 30000 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trio
from trio_websocket import open_websocket_url

from ingestor.kalshi.signing import Signer


def _start_sim(markets: int, tick_rate: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    cmd = [sys.executable, "-m", "ingestor.sim", "--port", "0", "--speed", "1",
           "--rate", "0", "--markets", str(markets), "--tick-rate", str(tick_rate),
           "--log-level", "WARNING"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    found: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("export "):
            k, _, v = line[len("export "):].strip().partition("=")
            found[k] = v
        if "KALSHI_PRIVATE_KEY_PEM_PATH" in found:
            break
    return proc, found


async def _ws(env: dict[str, str], seconds: float, warmup: float) -> tuple[int, float]:
    signer = Signer.from_file(env["KALSHI_API_KEY_ID"], Path(env["KALSHI_PRIVATE_KEY_PEM_PATH"]))
    url = env["KALSHI_WS_URL"]
    headers = [(k.encode(), v.encode()) for k, v in signer.headers("GET", url).items()]
    async with open_websocket_url(url, extra_headers=headers, message_queue_size=4096) as ws:
        await ws.send_message(json.dumps({"id": 1, "cmd": "subscribe",
                                          "params": {"channels": ["ticker"]}}))
        deadline = trio.current_time() + warmup
        while trio.current_time() < deadline:
            await ws.get_message()
        n = 0
        t0 = time.perf_counter()
        with trio.move_on_after(seconds):
            while True:
                frame = json.loads(await ws.get_message())
                if frame.get("type") == "ticker":
                    n += 1
                elif frame.get("type") == "error":
                    print(f"ws: subscription ended by the server: {frame}")
                    break
        return n, time.perf_counter() - t0


async def _rest(env: dict[str, str], seconds: float, path: str, workers: int) -> tuple[int, float]:
    count = 0

    async def worker(client: httpx.AsyncClient, end: float) -> None:
        nonlocal count
        while trio.current_time() < end:
            r = await client.get(path)
            r.raise_for_status()
            count += 1

    async with httpx.AsyncClient(base_url=env["KALSHI_HOST"]) as client:
        t0 = time.perf_counter()
        end = trio.current_time() + seconds
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(worker, client, end)
        return count, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print the figures."""
    p = argparse.ArgumentParser(prog="python -m ingestor.sim.bench")
    p.add_argument("--tick-rate", type=float, default=30000.0)
    p.add_argument("--markets", type=int, default=200)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rest-seconds", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args(argv)
    proc, env = _start_sim(args.markets, args.tick_rate)
    try:
        n, dt = trio.run(_ws, env, args.seconds, 1.0)
        print(f"ws: {n} ticker frames in {dt:.2f}s = {n / dt:,.0f} frames/s to one client "
              f"(offered {args.tick_rate:,.0f}/s, {args.markets} markets)")
    finally:
        proc.terminate()
        proc.wait(10)
    proc, env = _start_sim(20, 20.0)
    try:
        for path in ("/exchange/status", "/markets?limit=100", "/markets?limit=1000"):
            n, dt = trio.run(_rest, env, args.rest_seconds, path, args.workers)
            print(f"rest: GET {path}: {n} requests in {dt:.2f}s = {n / dt:,.0f} req/s "
                  f"({args.workers} concurrent)")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
