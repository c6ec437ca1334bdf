"""REST requests/s the client sustains against the simulator when both use the same limit.

    .venv/bin/python bench/bench_rest_client.py [--rate 20] [--burst 40] [--seconds 15]
                                                [--workers 4]

The simulator enforces a token bucket of `rate`/s with `burst`; the client's shared limiter is
set to the same figures. Several tasks issue a mix of market, event-page and status reads.
Prints the achieved rate after the initial burst as a ratio to the configured rate (target
>= 0.95) and the number of 429 replies (target 0).
"""

from __future__ import annotations

import argparse
import logging

import trio

from ingestor.kalshi.ratelimit import server_matched
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.kalshi.retry import RetryPolicy
from ingestor.kalshi.signing import Signer
from ingestor.sim import open_sim


async def bench(rate: float, burst: int, seconds: float, workers: int) -> None:
    async with open_sim(
        seed=1, markets=40, speed=60.0, rate=rate, burst=burst, tick_rate=0.0
    ) as sim:
        assert sim.private_key_path is not None
        signer = Signer.from_file(sim.key_id, sim.private_key_path)
        limiter = server_matched(rate, burst)
        stamps: list[float] = []
        async with KalshiRestClient(
            sim.rest_url, signer=signer, limiter=limiter, retry=RetryPolicy(max_attempts=5)
        ) as client:
            tickers = [m.ticker async for m in client.iter_markets(limit=1000)]
            start = trio.current_time()
            stamps.clear()

            async def worker(i: int) -> None:
                n = i
                while True:
                    kind = n % 3
                    if kind == 0:
                        await client.get_market(tickers[n % len(tickers)])
                    elif kind == 1:
                        async for _ in client.event_pages(limit=5):
                            break
                    else:
                        await client.exchange_status()
                    stamps.append(trio.current_time())
                    n += workers

            with trio.move_on_after(seconds):
                async with trio.open_nursery() as nursery:
                    for i in range(workers):
                        nursery.start_soon(worker, i)
            elapsed = trio.current_time() - start

        total = len(stamps)
        usable = int(limiter.capacity)
        after_burst = [t for t in stamps[usable:]]
        steady = (
            (len(after_burst) - 1) / (after_burst[-1] - after_burst[0])
            if len(after_burst) > 1
            else 0.0
        )
        print(
            f"configured limit          {rate:.1f} req/s, burst {burst} "
            f"(client keeps {limiter.reserve:.0f} token back)"
        )
        print(f"run                       {elapsed:.1f} s, {workers} concurrent tasks")
        print(f"requests completed        {total} (client sent {client.stats.requests})")
        print(f"overall                   {total / elapsed:.2f} req/s (includes the initial burst)")
        print(f"steady state              {steady:.2f} req/s  ratio to limit {steady / rate:.3f}")
        print(
            f"429 replies from sim      {sim.status_counts[429]}  "
            f"(client saw {client.stats.rate_limited}, retries {client.stats.retries})"
        )
        print(f"sim status counts         {dict(sim.status_counts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trio.run(bench, args.rate, args.burst, args.seconds, args.workers)


if __name__ == "__main__":
    main()
