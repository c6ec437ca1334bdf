"""`ingestor maintain`: keep partitions ahead and drop (or list) months past retention."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from ingestor.config import AdminSettings, load_settings
from ingestor.db import partitions
from ingestor.db.connect import connect
from ingestor.db.embedded import resolve_url
from ingestor.db.migrations import check_schema
from ingestor.logs import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--months-ahead", type=int, default=None,
                        help="partitions to keep ready past now (default PARTITION_MONTHS_AHEAD)")
    parser.add_argument("--drop-older-than-days", type=int, default=None,
                        help="detach and drop monthly partitions that end before now minus DAYS")
    parser.add_argument("--dry-run", action="store_true", help="only list what would be dropped")


def main(args: argparse.Namespace) -> int:
    settings = load_settings("admin")
    assert isinstance(settings, AdminSettings)
    setup_logging(settings.log_level, settings.log_format)
    url = resolve_url(settings.database_url, settings.ingestor_home)
    with connect(url, autocommit=True) as conn:
        check_schema(conn)
        ahead = args.months_ahead or settings.partition_months_ahead
        made = partitions.ensure_ahead(conn, ahead)
        print(f"partitions created: {made}")
        if args.drop_older_than_days is not None:
            cutoff = datetime.now(UTC) - timedelta(days=args.drop_older_than_days)
            names = partitions.drop_before(conn, cutoff, dry_run=args.dry_run)
            verb = "would drop" if args.dry_run else "dropped"
            print(f"{verb} {len(names)} partition(s): {', '.join(names) or '-'}")
        for parent, rows in partitions.default_partition_rows(conn).items():
            if rows:
                print(f"warning: {rows} row(s) in {parent}_default (run maintain again)")
    return 0
