"""A local, deterministic Kalshi look-alike (REST + WS on one loopback port) for tests and demos.

Reachable only when KALSHI_HOST / KALSHI_WS_URL point at it; nothing in the ingestor imports it
outside `ingestor sim` / `ingestor demo` and tests.
"""

from __future__ import annotations

from ingestor.sim.exchange import Exchange, ExchangeConfig, LifecycleMessage
from ingestor.sim.faults import Faults, FaultSpec, parse_fault
from ingestor.sim.model import Market, Tick, Trade
from ingestor.sim.server import Sim, open_sim
from ingestor.sim.ws_protocol import SubscriptionView

__all__ = [
    "Exchange",
    "ExchangeConfig",
    "FaultSpec",
    "Faults",
    "LifecycleMessage",
    "Market",
    "Sim",
    "SubscriptionView",
    "Tick",
    "Trade",
    "open_sim",
    "parse_fault",
]
