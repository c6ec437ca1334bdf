"""`ingestor demo`: embedded PostgreSQL + simulated exchange + every role, on one machine.

Needs no credentials and no internet: the exchange is the local simulator with a freshly
generated key, and each role runs under the supervisor as its own database user.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import psycopg
import trio

from ingestor import contract
from ingestor.commands.status import format_age
from ingestor.db import grants, ingest_state, migrations, partitions
from ingestor.db.connect import Database, connect
from ingestor.db.embedded import start_embedded, with_database, with_user
from ingestor.db.urls import mask_url
from ingestor.logs import setup_logging
from ingestor.paths import embedded_pg_dir, ingestor_home, supervisor_status_file
from ingestor.supervisor.child import OutputSettings
from ingestor.supervisor.cli import build_specs, role_command
from ingestor.supervisor.environment import secret_values
from ingestor.supervisor.logfmt import SecretMasker, StreamSink
from ingestor.supervisor.policy import RestartSettings
from ingestor.supervisor.selection import installed_roles
from ingestor.supervisor.status_file import StatusBoard
from ingestor.supervisor.supervise import Supervisor, SupervisorOptions

log = logging.getLogger(__name__)

DEMO_DB = "kalshi_demo"

# Fast intervals so every part shows data within seconds; a user's environment may override.
DEMO_DEFAULTS: dict[str, str] = {
    "DISCOVERY_SECONDS": "15",
    "BACKFILL_SECONDS": "10",
    "BACKFILL_START_DAYS": "1",
    "CANDLE_PERIODS": "1,60",
    "STRIKE_PERIODS": "hour,day",
    "CLOSED_CLEANUP_SECONDS": "30",
    "WS_SUB_REFRESH_SECONDS": "3",
    "WS_DB_FLUSH_SECONDS": "0.25",
    "WORK_QUEUE_POLL_SECONDS": "2",
    "PREDICTION_ENABLE": "1",
    "PREDICTION_POLL_SECONDS": "10",
    "SERVICE_GUARDRAILS": "1",
    "LOG_LEVEL": "INFO",
}

COUNTED_TABLES = ("events", "markets", "active_markets", "market_ticks", "market_candles",
                  "lifecycle_events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markets", type=int, default=40, help="markets the simulator lists")
    parser.add_argument("--speed", type=float, default=60.0,
                        help="simulated seconds per real second (lifecycle moves this fast)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop by itself after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--summary-every", type=float, default=5.0)
    parser.add_argument("--only", default=None, help="run just these roles (comma-separated)")


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def prepare_database(admin_url: str) -> str:
    """Create a fresh demo database, migrate it, apply roles and per-role login users."""
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DEMO_DB}"')
    url = with_database(admin_url, DEMO_DB)
    with connect(url, autocommit=True) as conn:
        applied = migrations.migrate(conn)
        say(f"migrated {DEMO_DB}: {len(applied)} migration(s), schema at version "
            f"{migrations.current_version(conn)}")
        partitions.ensure_ahead(conn, 3)
        grants.apply_roles(conn)
        for role in contract.ROLES:
            grants.ensure_login_user(conn, role)
        say(f"created group roles and login users: "
            f"{', '.join(contract.db_login_user(r) for r in contract.ROLES)}")
    return url


def role_environment(
    base: Mapping[str, str], db_url: str, sim: object, portal_password: str
) -> dict[str, str]:
    """What the supervisor sees: the user's environment, demo defaults, and the demo wiring."""
    env = dict(DEMO_DEFAULTS)
    env.update({k: v for k, v in base.items() if k in DEMO_DEFAULTS})
    for name in ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "INGESTOR_HOME"):
        if name in base:
            env[name] = base[name]
    for role in contract.ROLES:
        env[f"DATABASE_URL_{role.upper()}"] = with_user(db_url, contract.db_login_user(role))
    env.update({
        "KALSHI_HOST": sim.rest_url,  # type: ignore[attr-defined]
        "KALSHI_WS_URL": sim.ws_url,  # type: ignore[attr-defined]
        "KALSHI_API_KEY_ID": sim.key_id,  # type: ignore[attr-defined]
        "KALSHI_PRIVATE_KEY_PEM_PATH": str(sim.private_key_path),  # type: ignore[attr-defined]
        "WEB_PORTAL_PASSWORD": portal_password,
        "WEB_PORTAL_SECRET_KEY": base.get("WEB_PORTAL_SECRET_KEY") or secrets.token_hex(32),
    })
    return env


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    out = {}
    for table in COUNTED_TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed names
        out[table] = int(row[0]) if row else 0
    return out


def _key_ages(conn: psycopg.Connection) -> dict[str, float | None]:
    moment = datetime.now(UTC)
    return {k: e.age_seconds(moment) for k, e in ingest_state.read_all(conn).items()}


async def summarise(db: Database, supervisor: Supervisor, every: float, started: float) -> None:
    while True:
        await trio.sleep(every)
        try:
            counts, ages = await db.run(lambda c: (_counts(c), _key_ages(c)))
        except psycopg.Error as exc:
            say(f"summary unavailable: {str(exc).strip()}")
            continue
        states = " ".join(
            f"{c.name}={supervisor.board.get(c.name).state}" for c in supervisor.children
        )
        keys = " ".join(f"{k}={format_age(v)}" for k, v in sorted(ages.items()))
        say(
            f"{time.monotonic() - started:5.0f}s  events={counts['events']} "
            f"markets={counts['markets']} active={counts['active_markets']} "
            f"ticks={counts['market_ticks']} candles={counts['market_candles']} "
            f"lifecycle={counts['lifecycle_events']} | {states}"
        )
        if keys:
            say(f"       ingest_state ages: {keys}")


async def pause_markets(sim: object, first: float = 8.0, every: float = 15.0) -> None:
    """Pause one active market now and then, so lifecycle messages flow from the start.

    The simulator's own random pauses and close-time changes come at a random phase; these
    make the lifecycle path visible within the demo's first seconds.
    """
    exchange = sim.exchange  # type: ignore[attr-defined]
    await trio.sleep(first)
    turn = 0
    while True:
        tickers = sorted(exchange.active_tickers)
        if tickers:
            ticker = tickers[turn % len(tickers)]
            exchange.deactivate(ticker, pause_s=120)
            if turn == 0:
                say(f"pausing one simulated market every {every:g}s to show lifecycle flow "
                    f"(first: {ticker})")
            turn += 1
        await trio.sleep(every)


async def run_demo(args: argparse.Namespace) -> int:
    from ingestor.sim import open_sim

    started = time.monotonic()
    home = ingestor_home()
    admin_url = os.environ.get("DATABASE_URL")
    if admin_url:
        say(f"using DATABASE_URL {mask_url(admin_url)}")
    else:
        say(f"starting the embedded PostgreSQL 16 + pgvector in {embedded_pg_dir(home)}")
        admin_url = await trio.to_thread.run_sync(start_embedded)
    db_url = await trio.to_thread.run_sync(prepare_database, admin_url)
    roles = installed_roles()
    if args.only:
        wanted = [r.strip() for r in args.only.split(",") if r.strip()]
        roles = [r for r in roles if r in wanted]
    if not roles:
        say("no roles are installed; nothing to run")
        return 1
    portal_password = os.environ.get("WEB_PORTAL_PASSWORD") or secrets.token_urlsafe(12)
    async with open_sim(seed=args.seed, markets=args.markets, speed=args.speed) as sim:
        say(f"simulated exchange: REST {sim.rest_url}  WS {sim.ws_url}")
        say(f"generated API key {sim.key_id}; private key at {sim.private_key_path}")
        env = role_environment(os.environ, db_url, sim, portal_password)
        status_path = supervisor_status_file(home)
        specs = build_specs(roles, env, role_command)
        restart = RestartSettings()
        supervisor = Supervisor(
            specs,
            SupervisorOptions(restart=restart, grace_seconds=10.0),
            board=StatusBoard(status_path, roles),
            output=OutputSettings(
                sink=StreamSink(),
                masker=SecretMasker(secret_values(env) | {portal_password}),
                log_format="text",
            ),
        )
        say(f"starting roles: {', '.join(roles)} (status file {status_path})")
        if "portal" in roles:
            host = env.get("WEB_PORTAL_HOST", "127.0.0.1")
            port = env.get("WEB_PORTAL_PORT", "8000")
            say(f"portal: http://{host}:{port}/  password: {portal_password}")
        say(f"see freshness with: DATABASE_URL='{db_url}' ingestor status")
        say("press Ctrl-C to stop")
        db = Database(db_url, max_size=1, name="ingestor-demo")
        await trio.to_thread.run_sync(db.open)
        result: dict[str, int] = {}
        try:
            async with trio.open_nursery() as nursery:

                async def supervise(task_status: trio.TaskStatus[None]) -> None:
                    result["code"] = await supervisor.run(task_status=task_status)
                    nursery.cancel_scope.cancel()

                await nursery.start(supervise)
                nursery.start_soon(summarise, db, supervisor, args.summary_every, started)
                nursery.start_soon(pause_markets, sim)
                if args.seconds is not None:

                    async def stop_later() -> None:
                        await trio.sleep(args.seconds)
                        say(f"{args.seconds:g}s elapsed; stopping")
                        supervisor.stop()

                    nursery.start_soon(stop_later)
        finally:
            db.close()
    say("stopped")
    return result.get("code", 1)


def main(args: argparse.Namespace) -> int:
    setup_logging(os.environ.get("LOG_LEVEL", "WARNING").upper(), "text")
    try:
        return trio.run(run_demo, args)
    except KeyboardInterrupt:
        return 0

