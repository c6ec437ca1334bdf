"""Signature checks: the Authenticator on its own, then REST and the WS handshake over the wire."""

from __future__ import annotations

import gc
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from trio_websocket import ConnectionRejected, open_websocket_url

from ingestor.kalshi.signing import generate_key_pair, parse_private_key, parse_public_key
from ingestor.sim import Sim
from ingestor.sim.auth import Authenticator
from tests.sim.sim_client import KEY_ID, WS_PATH, auth_headers, recv, send, ws_client

NOW = 1_767_229_200.0
PATH = "/trade-api/v2/markets"


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return parse_private_key(generate_key_pair()[0])


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@pytest.fixture
def authenticator(key_pair: tuple[bytes, bytes]) -> Authenticator:
    return Authenticator(KEY_ID, parse_public_key(key_pair[1]), wall_clock=lambda: NOW)


def at(offset_s: float) -> int:
    return int((NOW + offset_s) * 1000)


@pytest.mark.parametrize("offset", [-5.0, 0.0, 5.0, 30.0, 59.0])
def test_skew_inside_the_window_is_accepted(
    authenticator: Authenticator, private_key: rsa.RSAPrivateKey, offset: float
) -> None:
    headers = lower(auth_headers(private_key, PATH, ts_ms=at(offset)))
    assert authenticator.check(headers, "GET", PATH) is None


@pytest.mark.parametrize("offset", [-31.0, -300.0, 61.0, 300.0])
def test_stale_or_future_timestamp_is_expired(
    authenticator: Authenticator, private_key: rsa.RSAPrivateKey, offset: float
) -> None:
    failure = authenticator.check(lower(auth_headers(private_key, PATH, ts_ms=at(offset))),
                                  "GET", PATH)
    assert failure is not None and failure.response.status == 401
    assert b'"code":"header_timestamp_expired"' in failure.response.body


def test_window_is_configurable(key_pair: tuple[bytes, bytes],
                                private_key: rsa.RSAPrivateKey) -> None:
    strict = Authenticator(KEY_ID, parse_public_key(key_pair[1]), max_age_s=2, max_future_s=1,
                           wall_clock=lambda: NOW)
    assert strict.check(lower(auth_headers(private_key, PATH, ts_ms=at(-3))), "GET", PATH)
    assert strict.check(lower(auth_headers(private_key, PATH, ts_ms=at(2))), "GET", PATH)
    assert strict.check(lower(auth_headers(private_key, PATH, ts_ms=at(-1))), "GET", PATH) is None


def test_pss_max_length_salt_needs_the_lenient_switch(
    key_pair: tuple[bytes, bytes], private_key: rsa.RSAPrivateKey
) -> None:
    headers = lower(auth_headers(private_key, PATH, ts_ms=at(0), salt=padding.PSS.MAX_LENGTH))
    strict = Authenticator(KEY_ID, parse_public_key(key_pair[1]), wall_clock=lambda: NOW)
    lenient = Authenticator(KEY_ID, parse_public_key(key_pair[1]), lenient_salt=True,
                            wall_clock=lambda: NOW)
    failure = strict.check(headers, "GET", PATH)
    assert failure is not None and failure.reason == "bad_signature"
    assert lenient.check(headers, "GET", PATH) is None


def test_method_and_path_are_part_of_the_message(
    authenticator: Authenticator, private_key: rsa.RSAPrivateKey
) -> None:
    headers = lower(auth_headers(private_key, PATH, ts_ms=at(0)))
    assert authenticator.check(headers, "GET", "/trade-api/v2/events") is not None
    assert authenticator.check(headers, "POST", PATH) is not None
    short = lower(auth_headers(private_key, "/markets", ts_ms=at(0)))
    assert authenticator.check(short, "GET", PATH) is not None


async def test_rest_accepts_signed_and_unsigned_public_reads(
    client: httpx.AsyncClient, private_key: rsa.RSAPrivateKey
) -> None:
    assert (await client.get("/markets", params={"limit": 2})).status_code == 200
    r = await client.get("/markets", params={"limit": 2}, headers=auth_headers(private_key, PATH))
    assert r.status_code == 200


async def test_rest_rejects_a_signature_over_the_query_string(
    client: httpx.AsyncClient, private_key: rsa.RSAPrivateKey, sim: Sim
) -> None:
    headers = auth_headers(private_key, PATH + "?limit=2")
    r = await client.get("/markets", params={"limit": 2}, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "authentication_error",
                                  "details": "INCORRECT_API_KEY_SIGNATURE",
                                  "message": "invalid signature"}}
    assert sim.auth_failures["bad_signature"] == 1


async def test_rest_rejects_wrong_key_stale_time_and_unknown_key_id(
    client: httpx.AsyncClient, private_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    r = await client.get("/markets", headers=auth_headers(other_key, PATH))
    assert r.status_code == 401 and r.json()["error"]["details"] == "INCORRECT_API_KEY_SIGNATURE"
    stale = int((time.time() - 120) * 1000)
    r = await client.get("/markets", headers=auth_headers(private_key, PATH, ts_ms=stale))
    assert r.status_code == 401 and r.json()["error"]["code"] == "header_timestamp_expired"
    r = await client.get("/markets", headers=auth_headers(private_key, PATH, key_id="nobody"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "NOT_FOUND"
    partial = {"KALSHI-ACCESS-KEY": KEY_ID}
    r = await client.get("/markets", headers=partial)
    assert r.status_code == 401 and r.json()["error"]["code"] == "authentication_error"


# trio-websocket leaves its socket open after a rejected handshake; collect it here.
leaky_client = pytest.mark.filterwarnings("ignore::ResourceWarning")


@leaky_client
async def test_ws_handshake_requires_headers(sim: Sim) -> None:
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(sim.ws_url):
            pass
    assert info.value.status_code == 401
    assert b"MISSING_AUTH_HEADERS" in (info.value.body or b"")
    del info
    gc.collect()


@leaky_client
async def test_ws_handshake_rejects_bad_signature(
    sim: Sim, other_key: rsa.RSAPrivateKey, private_key: rsa.RSAPrivateKey
) -> None:
    for headers in (auth_headers(other_key, WS_PATH), auth_headers(private_key, "/trade-api/v2")):
        extra = [(k.encode(), v.encode()) for k, v in headers.items()]
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(sim.ws_url, extra_headers=extra):
                pass
        assert info.value.status_code == 401
        assert b"INCORRECT_API_KEY_SIGNATURE" in (info.value.body or b"")
        del info
        gc.collect()


async def test_ws_handshake_with_valid_signature_connects(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    async with ws_client(sim, private_key) as ws:
        await send(ws, 1, "list_subscriptions")
        assert await recv(ws) == {"id": 1, "type": "ok", "msg": []}


async def test_ws_query_string_is_not_signed(sim: Sim, private_key: rsa.RSAPrivateKey) -> None:
    extra = [(k.encode(), v.encode()) for k, v in auth_headers(private_key, WS_PATH).items()]
    async with open_websocket_url(sim.ws_url + "?x=1", extra_headers=extra) as ws:
        await send(ws, 1, "list_subscriptions")
        assert (await recv(ws))["type"] == "ok"
