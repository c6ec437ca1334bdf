"""The rest role: discovery, lifecycle, candle backfill, closed-market repair, partitions."""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

import trio

from ingestor.backfill.market_candles import CoverageMemo
from ingestor.backfill.repair import RepairConfig, RepairState, repair_pass
from ingestor.backfill.run import BackfillConfig, BackfillState, backfill_pass
from ingestor.config import RestSettings
from ingestor.db import partitions
from ingestor.db.connect import Database
from ingestor.discovery import DiscoveryConfig, LifecycleApplier, discovery_pass
from ingestor.kalshi.clients import build_rest_client, build_signer
from ingestor.kalshi.ratelimit import configure_default_limiter
from ingestor.loops import run_every

log = logging.getLogger(__name__)

LIFECYCLE_SECONDS = 30.0
PARTITION_SECONDS = 86_400.0


async def ensure_partitions(db: Database, months_ahead: int) -> None:
    """Keep monthly candle and tick partitions created ahead."""
    await db.run(partitions.ensure_ahead, months_ahead)


async def main(settings: RestSettings, db: Database) -> None:
    """Run every loop of the role until cancelled."""
    limiter = configure_default_limiter(
        settings.kalshi_rest_rate_per_sec, settings.kalshi_rest_burst
    )
    signer = build_signer(settings.kalshi_api_key_id, settings.kalshi_private_key_pem_path)
    lifecycle = LifecycleApplier(grace=timedelta(minutes=settings.closed_cleanup_grace_minutes))
    # Shared: ranges the backfill fetched through a close need no tail repair in this process.
    memo = CoverageMemo()
    backfill_state, repair_state = BackfillState(memo=memo), RepairState(memo=memo)
    # One client per loop (one shared token bucket) so each pass counts its own requests.
    async with (
        build_rest_client(settings, signer=signer, limiter=limiter) as discovery_client,
        build_rest_client(settings, signer=signer, limiter=limiter) as backfill_client,
        build_rest_client(settings, signer=signer, limiter=limiter) as repair_client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(
            run_every,
            "partitions",
            PARTITION_SECONDS,
            functools.partial(ensure_partitions, db, settings.partition_months_ahead),
        )
        nursery.start_soon(
            run_every, "lifecycle", LIFECYCLE_SECONDS, functools.partial(lifecycle.apply, db)
        )
        nursery.start_soon(
            run_every,
            "discovery",
            settings.discovery_seconds,
            functools.partial(
                discovery_pass,
                discovery_client,
                db,
                DiscoveryConfig.from_settings(settings),
                lifecycle=lifecycle,
            ),
        )
        nursery.start_soon(
            run_every,
            "backfill",
            settings.backfill_seconds,
            functools.partial(
                backfill_pass,
                backfill_client,
                db,
                BackfillConfig.from_settings(settings),
                backfill_state,
            ),
        )
        if settings.closed_cleanup_seconds > 0:
            nursery.start_soon(
                run_every,
                "repair",
                settings.closed_cleanup_seconds,
                functools.partial(
                    repair_pass,
                    repair_client,
                    db,
                    RepairConfig.from_settings(settings),
                    repair_state,
                ),
            )
        log.info(
            "rest role running discovery_seconds=%s backfill_seconds=%s repair_seconds=%s "
            "queue=%s periods=%s",
            settings.discovery_seconds,
            settings.backfill_seconds,
            settings.closed_cleanup_seconds,
            settings.work_queue_enable,
            ",".join(map(str, settings.candle_periods)),
        )
