"""Sustained ticks/s through the ws write path against raw COPY of the same rows.

    .venv/bin/python bench/bench_tick_writes.py [--ticks 200000] [--batch 2000] [--repeat 3]

Starts its own embedded PostgreSQL (pgserver) in a temporary directory, migrates it, builds
ticks with the role's own row builder, then writes the same COPY lines, batch by batch (one
transaction per batch), through:

  raw COPY, plain table     COPY into an unindexed, unpartitioned table with the same columns
  raw COPY, same indexes    COPY into a plain table with market_ticks' primary key and ts index
  write path, copy          the role's batch transactions as its writer makes them: plain COPY
                            in a savepoint (staging fallback on a replayed row); quotes upsert
                            and ingest_state at most once a second
  write path, staged        the same with COPY into a temporary table + INSERT ... ON CONFLICT
  write path, copy+replay   'copy' with one already-stored row in every batch (fallback taken)

Prints ticks/s and the ratio of each write path to both raw baselines (target: >= 0.6 of raw
COPY), plus the Python cost of building a row.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from synthetic_ticks import ticker_frames

from ingestor.db import migrations, partitions
from ingestor.db.embedded import start_embedded, with_database
from ingestor.db.ticks import TICK_COLUMNS
from ingestor.kalshi.ws_protocol import DataMessage, Ticker, decode_frame
from ingestor.stream.buffer import StreamBuffer
from ingestor.stream.freshness import Freshness
from ingestor.stream.rows import Received, TickRow, build_tick
from ingestor.stream.sharding import Shard
from ingestor.stream.sink import write_batch

TARGET = 0.6
COLS = ", ".join(TICK_COLUMNS)


def frames(n: int, markets: int, rng: random.Random) -> list[str]:
    """Current-shape ticker frames over `markets` markets, a few ms apart, ending now."""
    return ticker_frames(n, rng, markets=markets)


def build_rows(texts: list[str]) -> tuple[list[tuple[TickRow, Ticker]], float]:
    """(row, message) pairs and the µs per row spent in build_tick alone."""
    parsed = []
    for text in texts:
        m = decode_frame(text)
        assert isinstance(m, DataMessage) and isinstance(m.body, Ticker)
        parsed.append(m)
    received = Received.now(0.0, datetime.now(UTC))
    t0 = time.perf_counter()
    rows = [build_tick(m.body, m.raw, received) for m in parsed]  # type: ignore[arg-type]
    spent = (time.perf_counter() - t0) / len(texts) * 1e6
    return list(zip(rows, [m.body for m in parsed], strict=True)), spent  # type: ignore[misc]


def timed(conn: psycopg.Connection, reset: Callable[[], None], work: Callable[[], None],
          n: int, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        reset()
        t0 = time.perf_counter()
        work()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--markets", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--database-url", help="admin URL of an existing server (default: embedded)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-ticks-"))
    os.chmod(tmp, 0o755)  # noqa: S103 - pgserver runs postgres as its own user when root
    try:
        admin = args.database_url or start_embedded(tmp / "pg", cleanup="stop")
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS bench_ticks WITH (FORCE)")
            c.execute("CREATE DATABASE bench_ticks")
        url = with_database(admin, "bench_ticks")
        with psycopg.connect(url, autocommit=True) as c:
            migrations.migrate(c)
            partitions.ensure_ahead(c, 1)
            c.execute("CREATE TABLE bench_plain (LIKE market_ticks)")
            c.execute("CREATE TABLE bench_indexed (LIKE market_ticks)")
            c.execute("ALTER TABLE bench_indexed ADD PRIMARY KEY (ticker, ts, fingerprint)")
            c.execute("CREATE INDEX ON bench_indexed (ts)")

        rng = random.Random(1)
        texts = frames(args.ticks, args.markets, rng)
        rows, build_us = build_rows(texts)
        line_groups = [[r.line for r, _ in rows[i:i + args.batch]]
                       for i in range(0, len(rows), args.batch)]
        shard = Shard()
        n = args.ticks
        results: dict[str, float] = {}
        with psycopg.connect(url) as conn:
            def reset() -> None:
                conn.execute("TRUNCATE bench_plain, bench_indexed, market_ticks, "
                             "market_quotes_latest, ingest_state")
                conn.commit()

            def raw(table: str) -> Callable[[], None]:
                def work() -> None:
                    for lines in line_groups:
                        with conn.cursor().copy(f"COPY {table} ({COLS}) FROM STDIN") as cp:
                            cp.write("".join(lines))
                        conn.commit()
                return work

            def path(strategy: str, replay: bool = False) -> Callable[[], None]:
                def work() -> None:
                    # the writer's cadence: quotes and freshness at most once a second
                    buf = StreamBuffer(n + 1)
                    fresh = Freshness(1.0)
                    quotes_at = -1.0
                    prev: TickRow | None = None
                    for start in range(0, n, args.batch):
                        for row, message in rows[start:start + args.batch]:
                            buf.add_tick(row, message, 0.0)
                        now = time.monotonic()
                        last = start + args.batch >= n
                        with_quotes = last or now - quotes_at >= 1.0
                        batch = buf.take(quotes=with_quotes)
                        if replay and prev is not None:
                            batch.ticks.insert(0, prev)
                        state = fresh.plan(batch.max_ts_us, batch.max_received_at, now)
                        write_batch(conn, batch, state, shard, strategy)  # type: ignore[arg-type]
                        fresh.committed(batch.max_ts_us, batch.max_received_at, state, now)
                        buf.release(batch)
                        if with_quotes:
                            quotes_at = now
                        prev = batch.ticks[-1]
                return work

            methods = {
                "raw COPY, plain table": raw("bench_plain"),
                "raw COPY, same indexes": raw("bench_indexed"),
                "write path, copy": path("copy"),
                "write path, staged": path("staged"),
                "write path, copy+replay": path("copy", True),
            }
            # interleaved repeats, best of each: the machine's other load hits every method
            for _ in range(args.repeat):
                for name, work in methods.items():
                    rate = timed(conn, reset, work, n, 1)
                    results[name] = max(results.get(name, 0.0), rate)
            stored = conn.execute("SELECT count(*) FROM market_ticks").fetchone()
    finally:
        if not args.database_url:
            try:
                import pgserver

                pgserver.get_server(tmp / "pg").cleanup()
            except Exception as exc:  # the temp dir goes anyway
                print(f"(embedded server cleanup: {exc})")
        shutil.rmtree(tmp, ignore_errors=True)

    plain = results["raw COPY, plain table"]
    indexed = results["raw COPY, same indexes"]
    print(f"ticks={n} batch={args.batch} markets={args.markets} repeat={args.repeat} (best run)")
    print(f"row build (fingerprint + COPY line): {build_us:.2f} us/tick "
          f"= {1e6 / build_us:,.0f} ticks/s on one core")
    print(f"{'':26s} {'ticks/s':>10s} {'vs plain':>9s} {'vs indexed':>11s}")
    for name, rate in results.items():
        print(f"{name:26s} {rate:10,.0f} {rate / plain:9.2f} {rate / indexed:11.2f}")
    best = max(("write path, copy", "write path, staged"), key=results.__getitem__)
    print(f"chosen strategy: {best.split(', ')[1]} (ratio to raw COPY into the same-indexed "
          f"table {results[best] / indexed:.2f}, into a plain heap {results[best] / plain:.2f}; "
          f"target {TARGET})")
    print(f"rows stored by the last run: {stored[0] if stored else 0}")
    print(f"median of write paths: {statistics.median(list(results.values())[2:]):,.0f} ticks/s")


if __name__ == "__main__":
    main()
