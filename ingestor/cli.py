"""The `ingestor` command: one program for every role, the supervisor and admin tasks.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `main(args) -> int`;
modules are imported only when their command runs, so `ingestor run` never imports role code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ingestor.errors import UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "migrate": ("ingestor.commands.migrate", "apply schema migrations (admin DATABASE_URL)"),
    "maintain": ("ingestor.commands.maintain", "create partitions ahead, drop old ones"),
    "run": ("ingestor.supervisor.cli", "run roles as supervised child processes"),
    "role": ("ingestor.commands.role", "run one role in this process (used by `run`)"),
    "demo": ("ingestor.commands.demo", "embedded Postgres + simulated exchange + every role"),
    "sim": ("ingestor.sim.cli", "the simulated Kalshi exchange"),
    "status": ("ingestor.commands.status", "ingest_state freshness and supervised role states"),
    "health": ("ingestor.supervisor.health", "exit 0 when a role's ingest_state keys are fresh"),
    "config": ("ingestor.commands.config", "print a role's effective settings, secrets masked"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingestor", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_list or args_list[0] in {"-h", "--help"}:
        parser.print_help()
        return 0 if args_list else 2
    name, rest = args_list[0], args_list[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; valid: {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    if name == "sim":
        return int(module.main(rest))
    sub = argparse.ArgumentParser(prog=f"ingestor {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    try:
        return int(module.main(args))
    except UserError as exc:
        print(f"ingestor {name}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
