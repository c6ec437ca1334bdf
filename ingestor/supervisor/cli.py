"""`ingestor run [--only ROLE,...]`: every role as a supervised child process.

Children run `python -m ingestor role NAME` in a fresh process group with an environment built
from scratch (see `supervisor.environment`); `--child-command` replaces that command in tests.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import trio

from ingestor import contract
from ingestor.errors import ConfigurationError
from ingestor.logs import setup_logging
from ingestor.paths import ingestor_home, supervisor_status_file
from ingestor.supervisor.child import ChildSpec, OutputSettings
from ingestor.supervisor.environment import build_child_env, secret_values, supervisor_environment
from ingestor.supervisor.logfmt import LogFormat, SecretMasker, StreamSink
from ingestor.supervisor.policy import InvalidRestartSettings, RestartSettings
from ingestor.supervisor.selection import installed_roles, select_roles
from ingestor.supervisor.status_file import StatusBoard, read_status
from ingestor.supervisor.supervise import Supervisor, SupervisorOptions

log = logging.getLogger(__name__)

CommandFor = Callable[[str], list[str]]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def role_command(role: str) -> list[str]:
    """The real child: this interpreter running `ingestor role NAME`."""
    return [sys.executable, "-m", "ingestor", "role", role]


def template_command(template: str) -> CommandFor:
    """A command from a shell-like template where `{role}` stands for the role name."""
    parts = shlex.split(template)
    if not parts:
        raise ConfigurationError("--child-command is empty")
    return lambda role: [p.replace("{role}", role) for p in parts]


def duration(text: str) -> float:
    """Seconds from '30', '30s', '1.5', '500ms', '2m' or '1h'."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30, 30s, 500ms, 2m)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = RestartSettings()
    parser.add_argument(
        "--only",
        metavar="ROLE,...",
        help="run just these roles (default: KALSHI_RUN_MODE when it names roles, else all)",
    )
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help="add KEY=VALUE variables from FILE (default: $ENV_FILE); set variables win",
    )
    parser.add_argument(
        "--status-file",
        metavar="PATH",
        type=Path,
        help="where role states are written (default: <INGESTOR_HOME>/run/supervisor-status.json)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="child lines as '[role] line' or JSON objects (default: $LOG_FORMAT or text)",
    )
    parser.add_argument("--log-level", help="supervisor log level (default: $LOG_LEVEL or INFO)")
    parser.add_argument(
        "--backoff-initial",
        type=duration,
        default=d.backoff_initial,
        metavar="SECONDS",
        help=f"first restart delay (default {d.backoff_initial:g})",
    )
    parser.add_argument(
        "--backoff-max",
        type=duration,
        default=d.backoff_max,
        metavar="SECONDS",
        help=f"restart delay cap (default {d.backoff_max:g})",
    )
    parser.add_argument(
        "--stable-seconds",
        type=duration,
        default=d.stable_seconds,
        metavar="SECONDS",
        help=(
            "a run this long resets the backoff and the failure count "
            f"(default {d.stable_seconds:g})"
        ),
    )
    parser.add_argument(
        "--start-retries",
        type=int,
        default=d.start_retries,
        metavar="N",
        help=f"FATAL after more than N failures within --fail-window (default {d.start_retries})",
    )
    parser.add_argument(
        "--fail-window",
        type=duration,
        default=d.fail_window,
        metavar="SECONDS",
        help=(
            "window for --start-retries, in seconds of the child's run time; backoff waits "
            f"do not count (default {d.fail_window:g})"
        ),
    )
    parser.add_argument(
        "--startsecs",
        type=duration,
        default=d.startsecs,
        metavar="SECONDS",
        help=f"a child up this long is RUNNING (default {d.startsecs:g})",
    )
    parser.add_argument(
        "--grace-seconds",
        type=duration,
        default=10.0,
        metavar="SECONDS",
        help="on stop, time between SIGTERM and SIGKILL (default 10)",
    )
    parser.add_argument(
        "--exit-on-fatal",
        action="store_true",
        help="stop everything and exit 1 when a role turns FATAL (default: others keep running)",
    )
    parser.add_argument("--child-command", help=argparse.SUPPRESS)


def build_specs(
    roles: list[str], source: Mapping[str, str], command_for: CommandFor
) -> list[ChildSpec]:
    """One ChildSpec per role, warning about roles that fall back to the shared DATABASE_URL."""
    specs = []
    for role in roles:
        child_env = build_child_env(role, source)
        for warning in child_env.warnings:
            log.warning("%s", warning)
        specs.append(ChildSpec(role, tuple(command_for(role)), child_env.env))
    return specs


def _check_status_file_free(path: Path) -> None:
    status = read_status(path)
    if status is not None and not status["stale"] and status.get("supervisor_pid") != os.getpid():
        raise ConfigurationError(
            f"status file {path} belongs to a running supervisor "
            f"(pid {status['supervisor_pid']}); stop it or pass --status-file"
        )


def main(args: argparse.Namespace) -> int:
    source = supervisor_environment(os.environ, args.env_file)
    log_format: LogFormat = args.log_format or (
        "json" if source.get("LOG_FORMAT", "").lower() == "json" else "text"
    )
    level = (args.log_level or source.get("LOG_LEVEL") or "INFO").upper()
    setup_logging(level if level in {"DEBUG", "INFO", "WARNING", "ERROR"} else "INFO", log_format)

    command_for: CommandFor = role_command
    available = installed_roles()
    if args.child_command:
        command_for = template_command(args.child_command)
        # An injected command does not run roles/ code, so every contract role may be named.
        available = list(contract.ROLES)
    roles = select_roles(args.only, source.get("KALSHI_RUN_MODE"), available)

    try:
        restart = RestartSettings(
            backoff_initial=args.backoff_initial,
            backoff_max=args.backoff_max,
            stable_seconds=args.stable_seconds,
            start_retries=args.start_retries,
            fail_window=args.fail_window,
            startsecs=args.startsecs,
        )
        options = SupervisorOptions(
            restart=restart, grace_seconds=args.grace_seconds, exit_on_fatal=args.exit_on_fatal
        )
    except (InvalidRestartSettings, ValueError) as exc:
        raise ConfigurationError(str(exc)) from None

    status_path = args.status_file or supervisor_status_file(
        ingestor_home(source.get("INGESTOR_HOME"))
    )
    _check_status_file_free(status_path)
    specs = build_specs(roles, source, command_for)
    output = OutputSettings(
        sink=StreamSink(), masker=SecretMasker(secret_values(source)), log_format=log_format
    )
    supervisor = Supervisor(specs, options, board=StatusBoard(status_path, roles), output=output)
    return trio.run(supervisor.run)
