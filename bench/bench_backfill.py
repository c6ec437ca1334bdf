"""Candle backfill: wall time against the rate-limit ideal, and upsert rows/s against raw COPY.

    .venv/bin/python bench/bench_backfill.py [--markets 60] [--rate 100] [--burst 200]
                                            [--rows 200000] [--batch 1440]

Part 1 backfills every hourly/daily market of the simulator (24 h of history, candle periods
1 and 60) through the REST client with the simulator and the client both limited to `rate`
requests/s (`burst` bucket). The ideal wall time is (requests - burst) / rate: the time the
token bucket alone needs. Part 2 writes the same synthetic candle rows (1) with a raw COPY
into a plain table, (2) with the staged COPY + INSERT ... ON CONFLICT DO UPDATE used by the
role (new rows, then unchanged rows, then changed rows), and (3) with an INSERT ... SELECT
FROM unnest(...) variant; each in transactions of `batch` rows, and prints rows/s and the
ratio to raw COPY. An embedded PostgreSQL is started in a temporary directory.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import trio
from psycopg import sql
from psycopg.types.json import Jsonb

from ingestor.backfill.candle_rows import CANDLE_COLUMNS
from ingestor.backfill.run import BackfillConfig, BackfillState, backfill_pass
from ingestor.config import RestSettings, load_settings
from ingestor.db import candles, migrations, partitions
from ingestor.db.connect import Database
from ingestor.db.embedded import start_embedded, with_database
from ingestor.kalshi.clients import build_signer
from ingestor.kalshi.ratelimit import server_matched
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.kalshi.retry import RetryPolicy
from ingestor.sim import open_sim


def fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        migrations.migrate(conn)
        partitions.ensure_ahead(conn, 3)
    return url


async def backfill_bench(url: str, markets: int, rate: float, burst: int) -> None:
    settings = load_settings("rest", {"CANDLE_PERIODS": "1,60"})
    assert isinstance(settings, RestSettings)
    config = BackfillConfig.from_settings(settings)
    async with open_sim(
        seed=1, markets=markets, manual_clock=True, rate=rate, burst=burst, tick_rate=0
    ) as sim:
        db = Database(url, max_size=4, name="bench").open()
        try:
            limiter = server_matched(rate, burst)
            async with KalshiRestClient(
                sim.rest_url,
                signer=build_signer(sim.key_id, sim.private_key_path),
                limiter=limiter,
                retry=RetryPolicy(max_attempts=6),
            ) as client:
                now = datetime.fromtimestamp(sim.clock.now(), UTC)
                t0 = time.perf_counter()
                result = await backfill_pass(client, db, config, BackfillState(), now=lambda: now)
                wall = time.perf_counter() - t0
                requests = client.stats.requests
                limited = client.stats.rate_limited
        finally:
            db.close()
    ideal = max(requests - limiter.capacity, 0) / rate
    print(
        f"backfill: markets={result.markets_total} candles={result.candles_written} "
        f"requests={requests} 429s={limited} status={result.status}"
    )
    print(
        f"backfill: wall={wall:.2f}s ideal={ideal:.2f}s (rate {rate:g}/s, burst {burst}) "
        f"wall/ideal={wall / ideal if ideal else float('nan'):.3f} "
        f"achieved={requests / wall:.1f} req/s"
    )


def synthetic_rows(n: int) -> list[tuple[Any, ...]]:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    per = 1440
    rows = []
    for i in range(n):
        ticker = f"BENCH-{i // per:05d}"
        end = base + timedelta(minutes=i % per + 1)
        p = Decimal(f"0.{(i * 7) % 90 + 5:02d}00")
        rows.append(
            (
                ticker,
                1,
                end,
                p,
                p,
                p,
                p,
                p + Decimal("0.01"),
                p,
                p + Decimal("0.02"),
                p + Decimal("0.01"),
                p,
                p,
                p,
                p,
                Decimal("0.4950"),
                p,
                Decimal("12.00"),
                Decimal(f"{i % 500}.00"),
                None,
            )
        )
    return rows


def changed(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    out = []
    close = CANDLE_COLUMNS.index("yes_bid_close")
    for row in rows:
        r = list(row)
        r[close] = r[close] + Decimal("0.0001")
        out.append(tuple(r))
    return out


_UNNEST_TYPES = ("text", "smallint", "timestamptz", *["numeric"] * 16, "jsonb")


def upsert_unnest(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """The alternative measured against the staged COPY: one INSERT ... FROM unnest(arrays)."""
    columns = list(zip(*rows, strict=True))
    extra = CANDLE_COLUMNS.index("extra")
    columns[extra] = tuple(None if v is None else Jsonb(v) for v in columns[extra])
    source = sql.SQL("unnest({}) AS s ({})").format(
        sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t)) for t in _UNNEST_TYPES),
        sql.SQL(", ").join(map(sql.Identifier, CANDLE_COLUMNS)),
    )
    with conn.cursor() as cur:
        cur.execute(candles._merge_sql(source), [list(c) for c in columns])
        return cur.rowcount


def timed(
    url: str,
    rows: Sequence[tuple[Any, ...]],
    batch: int,
    write: Callable[[psycopg.Connection, Sequence[tuple[Any, ...]]], object],
) -> float:
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        for i in range(0, len(rows), batch):
            write(conn, rows[i : i + batch])
            conn.commit()
        return time.perf_counter() - t0


def raw_copy(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    with (
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("COPY bench_plain ({}) FROM STDIN").format(
                sql.SQL(", ").join(map(sql.Identifier, CANDLE_COLUMNS))
            )
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def upsert_bench(admin_url: str, n: int, batch: int) -> None:
    rows = synthetic_rows(n)
    url = fresh_database(admin_url, "bench_upsert")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_plain (LIKE market_candles INCLUDING DEFAULTS)")
    results: list[tuple[str, float]] = []
    results.append(("raw COPY, plain table", timed(url, rows, batch, raw_copy)))
    results.append(("staged upsert, new rows", timed(url, rows, batch, candles.upsert_candles)))
    results.append(("staged upsert, unchanged", timed(url, rows, batch, candles.upsert_candles)))
    results.append(
        ("staged upsert, changed", timed(url, changed(rows), batch, candles.upsert_candles))
    )
    url2 = fresh_database(admin_url, "bench_unnest")
    results.append(("unnest upsert, new rows", timed(url2, rows, batch, upsert_unnest)))
    results.append(("unnest upsert, unchanged", timed(url2, rows, batch, upsert_unnest)))
    results.append(("unnest upsert, changed", timed(url2, changed(rows), batch, upsert_unnest)))
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM market_candles").fetchone()
    assert stored is not None and stored[0] == n
    copy_rate = n / results[0][1]
    print(f"upsert: rows={n} batch={batch}")
    for name, seconds in results:
        rate = n / seconds
        print(f"upsert: {name:<28} {rate:>10,.0f} rows/s  ratio_to_raw_copy={rate / copy_rate:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=60)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1440)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    tmp.chmod(0o755)
    try:
        admin = start_embedded(tmp / "pg", cleanup="stop")
        url = fresh_database(admin, "bench_backfill")
        trio.run(backfill_bench, url, args.markets, args.rate, args.burst)
        upsert_bench(admin, args.rows, args.batch)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
