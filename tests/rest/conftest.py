"""Fixtures for the rest role: the simulator over loopback, a recording transport, the rest DB user."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from ingestor.config import RestSettings, load_settings
from ingestor.db.connect import Database
from ingestor.kalshi.clients import build_signer
from ingestor.kalshi.ratelimit import TokenBucket
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.kalshi.retry import Backoff, RetryPolicy
from ingestor.sim import Sim, open_sim

Rule = Callable[[httpx.Request], httpx.Response | None]


@dataclass(frozen=True)
class CandleCall:
    ticker: str
    period: int
    start_ts: int
    end_ts: int
    historical: bool


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport: records every request, and lets a test answer some itself."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.rules: list[Rule] = []
        self.after: Callable[[httpx.Request], None] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        try:
            for rule in self.rules:
                response = rule(request)
                if response is not None:
                    return response
            return await self.inner.handle_async_request(request)
        finally:
            if self.after is not None:
                self.after(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def mark(self) -> int:
        return len(self.requests)

    def candle_calls(self, since: int = 0) -> list[CandleCall]:
        out = []
        for request in self.requests[since:]:
            parts = request.url.path.split("/")
            if parts[-1] != "candlesticks":
                continue
            query = parse_qs(request.url.query.decode())
            out.append(
                CandleCall(
                    ticker=parts[-2],
                    period=int(query["period_interval"][0]),
                    start_ts=int(query["start_ts"][0]),
                    end_ts=int(query["end_ts"][0]),
                    historical="/historical/" in request.url.path,
                )
            )
        return out

    def paths(self, since: int = 0) -> list[str]:
        return [r.url.path for r in self.requests[since:]]


def rest_settings(**env: str) -> RestSettings:
    """Rest settings from explicit values only (the process environment is not read)."""
    settings = load_settings("rest", env=env)
    assert isinstance(settings, RestSettings)
    return settings


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    """A frozen-clock simulator (20 markets per open set, 24 h of history)."""
    async with open_sim(
        seed=1, markets=20, manual_clock=True, rate=100_000, burst=100_000, tick_rate=0
    ) as s:
        yield s


def make_client(
    sim: Sim, transport: RecordingTransport, *, retries: int = 3, rate: float = 10_000.0
) -> KalshiRestClient:
    """A signed client on the simulator with fast retries."""
    return KalshiRestClient(
        sim.rest_url,
        signer=build_signer(sim.key_id, sim.private_key_path),
        limiter=TokenBucket(rate, max(rate, 1.0)),
        retry=RetryPolicy(max_attempts=retries + 1, backoff=Backoff(base=0.002, cap=0.01)),
        transport=transport,
        timeout=10.0,
    )


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
async def client(sim: Sim, transport: RecordingTransport) -> AsyncIterator[KalshiRestClient]:
    async with make_client(sim, transport) as c:
        yield c


@pytest.fixture
def rest_db(role_url: Callable[[str], str]) -> Iterator[Database]:
    """The test database as the rest role's login user (so grants are exercised)."""
    db = Database(role_url("rest"), max_size=4, name="test-rest").open()
    try:
        yield db
    finally:
        db.close()


def sim_now(sim: Sim) -> Callable[[], datetime]:
    """The exchange clock as an aware datetime."""
    return lambda: datetime.fromtimestamp(sim.clock.now(), UTC)
