"""`ingestor config ROLE`: the role's effective settings, secrets masked."""

from __future__ import annotations

import argparse
import json

from ingestor.config import SETTINGS_BY_ROLE, load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("role", choices=sorted(SETTINGS_BY_ROLE))
    parser.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    settings = load_settings(args.role)
    values = settings.masked()
    if args.json:
        print(json.dumps(values, indent=2, default=str))
        return 0
    width = max(len(k) for k in values)
    for key, value in values.items():
        shown = ",".join(map(str, value)) if isinstance(value, list) else value
        print(f"{key:<{width}}  {'' if shown is None else shown}")
    return 0
