"""Fixtures for the simulated exchange: one key pair per session, quiet sims, HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ingestor.kalshi.signing import generate_key_pair, parse_private_key
from ingestor.sim import Sim, open_sim
from tests.sim.sim_client import sim_kwargs


@pytest.fixture(scope="session")
def key_pair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM), generated once."""
    return generate_key_pair()


@pytest.fixture(scope="session")
def private_key(key_pair: tuple[bytes, bytes]) -> rsa.RSAPrivateKey:
    return parse_private_key(key_pair[0])


@pytest.fixture
async def sim(key_pair: tuple[bytes, bytes]) -> AsyncIterator[Sim]:
    """A quiet simulator: manual clock, no automatic ticks, no rate limit."""
    async with open_sim(**sim_kwargs(key_pair)) as s:
        yield s


@pytest.fixture
async def client(sim: Sim) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as c:
        yield c
