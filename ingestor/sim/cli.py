"""`ingestor sim`: run the simulated Kalshi exchange until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from pathlib import Path

import trio

from ingestor.sim.faults import FAULT_HELP, FaultSpec, FaultSpecError, parse_fault
from ingestor.sim.server import open_sim

log = logging.getLogger(__name__)


def _fault(text: str) -> FaultSpec:
    try:
        return parse_fault(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The `ingestor sim` command line."""
    p = argparse.ArgumentParser(
        prog="ingestor sim",
        description="Simulated Kalshi exchange: REST and WS on one loopback port.",
        epilog=FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port, 0 for any free one (8765)")
    p.add_argument("--allow-non-loopback", action="store_true",
                   help="permit binding an address other than loopback")
    p.add_argument("--public-key", type=Path, metavar="PEM",
                   help="RSA public key (PEM) to verify signatures; default: generate a pair")
    p.add_argument("--key-id", help="API key id clients must send (default: a random UUID)")
    p.add_argument("--key-dir", type=Path,
                   help="where to write a generated private key (default: a temp dir "
                        "removed on exit)")
    p.add_argument("--seed", type=int, default=1, help="world seed (default 1)")
    p.add_argument("--markets", type=int, default=20, help="markets open at start (default 20)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per real second (default 1.0)")
    p.add_argument("--tick-rate", type=float, default=None,
                   help="ticker frames per real second over all markets (default 20)")
    p.add_argument("--start-ts", type=int, default=None,
                   help="simulated Unix time at start (default: now)")
    p.add_argument("--history-hours", type=float, default=24.0,
                   help="hours of settled history before start; older markets are "
                        "historical (default 24)")
    p.add_argument("--no-tick-history", action="store_true",
                   help="do not keep streamed ticks (constant memory; candles then cover "
                        "only the pre-start history)")
    p.add_argument("--legacy", action="store_true",
                   help="integer cents/counts payloads (pre-2026-03-12 shape)")
    p.add_argument("--rate", type=float, default=20.0,
                   help="REST token bucket refill per second, 0 = unlimited (default 20)")
    p.add_argument("--burst", type=int, default=40, help="REST token bucket size (default 40)")
    p.add_argument("--lenient-salt", action="store_true",
                   help="accept any PSS salt length, not only the digest length")
    p.add_argument("--max-age", type=float, default=30.0,
                   help="reject signatures older than this many seconds (default 30)")
    p.add_argument("--max-future", type=float, default=60.0,
                   help="reject signatures further ahead than this many seconds (default 60)")
    p.add_argument("--ping-interval", type=float, default=10.0,
                   help="seconds between WS heartbeat pings (default 10)")
    p.add_argument("--fault", type=_fault, action="append", default=[], metavar="SPEC",
                   help="inject a fault (repeatable; see below)")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p


def _check_host(host: str, allow: bool) -> str | None:
    if allow or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return f"--host {host}: not a loopback address; pass --allow-non-loopback to bind it anyway"


async def _serve(args: argparse.Namespace) -> int:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        public_pem = args.public_key.read_bytes() if args.public_key else None
        async with open_sim(
            seed=args.seed, markets=args.markets, speed=args.speed, rate=args.rate,
            burst=args.burst, legacy=args.legacy, public_key_pem=public_pem,
            tick_rate=args.tick_rate, key_id=args.key_id, key_dir=args.key_dir, host=args.host,
            port=args.port, start_ts=args.start_ts, history_hours=args.history_hours,
            lenient_salt=args.lenient_salt, max_age_s=args.max_age, max_future_s=args.max_future,
            ping_interval=args.ping_interval, faults=args.fault,
            record_ticks=not args.no_tick_history,
        ) as sim:
            key_note = ""
            if sim.private_key_path is not None and args.key_dir is None:
                key_note = " (removed on exit)"
            lines = [
                "kalshi-sim ready",
                f"  REST         {sim.rest_url}",
                f"  WS           {sim.ws_url}",
                f"  key id       {sim.key_id}",
            ]
            if sim.private_key_path is not None:
                lines.append(f"  private key  {sim.private_key_path}{key_note}")
            lines += [
                f"export KALSHI_HOST={sim.rest_url}",
                f"export KALSHI_WS_URL={sim.ws_url}",
                f"export KALSHI_API_KEY_ID={sim.key_id}",
            ]
            if sim.private_key_path is not None:
                lines.append(f"export KALSHI_PRIVATE_KEY_PEM_PATH={sim.private_key_path}")
            print("\n".join(lines), flush=True)
            async for signum in signals:
                log.info("sim stopping signal=%s", signal.Signals(signum).name)
                break
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (without the program name), serve until SIGINT/SIGTERM, return 0."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    problem = _check_host(args.host, args.allow_non_loopback)
    if problem is None and args.markets < 1:
        problem = "--markets must be at least 1"
    if problem is None and args.speed <= 0:
        problem = "--speed must be positive"
    if problem is None and args.public_key is not None and not args.public_key.is_file():
        problem = f"--public-key {args.public_key}: file not found"
    if problem is not None:
        print(f"ingestor sim: {problem}", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=args.log_level.upper(), stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
    try:
        return trio.run(_serve, args)
    except KeyboardInterrupt:
        return 0
