"""Fault injection from the Python API and from --fault specs."""

from __future__ import annotations

import gc
import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from trio_websocket import ConnectionClosed

from ingestor.sim import FaultSpec, Sim, open_sim, parse_fault
from ingestor.sim.faults import Faults, FaultSpecError, parse_duration
from tests.sim.sim_client import command, recv, send, sim_kwargs, ws_client


async def test_http_errors_fail_the_next_replies_then_recover(
    sim: Sim, client: httpx.AsyncClient
) -> None:
    sim.faults.http_errors(2, status=503)
    codes = [(await client.get("/exchange/status")).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    sim.faults.http_errors(1, status=500)
    r = await client.get("/markets")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_server_error"
    sim.faults.http_errors(1)
    r = await client.get("/markets")
    assert r.status_code == 429 and r.json() == {"error": "too many requests"}


async def test_slow_replies_still_answer(sim: Sim, client: httpx.AsyncClient) -> None:
    sim.faults.slow_replies(1, 0.05)
    assert (await client.get("/exchange/status")).status_code == 200
    assert sim.faults.take_http() is None


async def test_fault_specs_fire_at_start_and_periodically(key_pair: tuple[bytes, bytes]) -> None:
    specs = ["500:2", parse_fault("gap:1:every=10ms")]
    async with (
        open_sim(**sim_kwargs(key_pair, faults=specs)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url) as client,
    ):
        codes = [(await client.get("/exchange/status")).status_code for _ in range(3)]
        assert codes == [500, 500, 200]
        await sim.wait_for(lambda: sim.faults.frames_armed)
        assert sim.faults.take_frame() == "drop"


@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_drop_ws_connections_cuts_clients(sim: Sim, private_key: rsa.RSAPrivateKey) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["ticker"])
        assert sim.faults.drop_ws_connections() == 1
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.reason is not None and info.value.reason.code != 1000
        del info
    await sim.wait_for(lambda: sim.subscriptions() == {})
    # trio-websocket does not close its socket after an abnormal closure; collect it here.
    gc.collect()


async def test_malformed_frames_are_not_json(sim: Sim, private_key: rsa.RSAPrivateKey) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["ticker"])
        sim.faults.malformed_frames(2)
        ticks = sim.emit_ticks(3)
        raw = [await ws.get_message() for _ in ticks]
        for text in raw[:2]:
            with pytest.raises(json.JSONDecodeError):
                json.loads(text)
        assert json.loads(raw[2])["msg"] == sim.exchange.ticker_msg(ticks[2])


async def test_duplicate_frames_are_sent_twice(sim: Sim, private_key: rsa.RSAPrivateKey) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["ticker"])
        sim.faults.duplicate_frames(1)
        first, second = sim.emit_ticks(2)
        frames = [await recv(ws) for _ in range(3)]
        assert [f["msg"]["ts_ms"] for f in frames] == [first.ts_ms, first.ts_ms, second.ts_ms]


async def test_dropped_frames_leave_a_silent_gap(sim: Sim, private_key: rsa.RSAPrivateKey) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["ticker"])
        sim.faults.drop_frames(2)
        ticks = sim.emit_ticks(4)
        got = [(await recv(ws))["msg"] for _ in range(2)]
        assert got == [sim.exchange.ticker_msg(t) for t in ticks[2:]]


async def test_ws_error_25_ends_ticker_subscriptions(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", replies=2, channels=["ticker", "market_lifecycle_v2"])
        assert sim.faults.ws_error(25) == 1
        err = await recv(ws)
        assert err["type"] == "error" and err["sid"] == 1
        assert err["msg"] == {"code": 25, "msg": "Subscription buffer overflow", "sid": 1}
        sim.emit_ticks(5)
        await send(ws, 2, "list_subscriptions")
        assert await recv(ws) == {"id": 2, "type": "ok",
                                  "msg": [{"channel": "market_lifecycle_v2", "sid": 2}]}


async def test_slow_reader_overflows_its_buffer_with_error_25(
    key_pair: tuple[bytes, bytes], private_key: rsa.RSAPrivateKey
) -> None:
    async with (
        open_sim(**sim_kwargs(key_pair, ws_buffer_limit=2000)) as sim,
        ws_client(sim, private_key) as ws,
    ):
        await command(ws, 1, "subscribe", channels=["ticker"])
        sim.emit_ticks(50)
        frames = []
        while True:
            frame = await recv(ws)
            frames.append(frame)
            if frame["type"] == "error":
                break
        assert frame["msg"]["code"] == 25
        assert 1 < len(frames) < 50
        assert sim.subscriptions() == {1: []}


def test_faults_need_a_running_simulator() -> None:
    with pytest.raises(RuntimeError, match="not attached"):
        Faults().drop_ws_connections()


@pytest.mark.parametrize(("spec", "want"), [
    ("429:20", FaultSpec("http", count=20, status=429)),
    ("503:3:every=2m", FaultSpec("http", count=3, status=503, every=120.0)),
    ("slow:5:1.5s", FaultSpec("slow", count=5, seconds=1.5)),
    ("drop:every=30s", FaultSpec("drop", every=30.0)),
    ("malformed:4", FaultSpec("malformed", count=4)),
    ("duplicate:2:every=500ms", FaultSpec("duplicate", count=2, every=0.5)),
    ("gap:7", FaultSpec("gap", count=7)),
    ("wserror", FaultSpec("wserror", code=25)),
    ("wserror:10:every=1h", FaultSpec("wserror", code=10, every=3600.0)),
])
def test_parse_fault(spec: str, want: FaultSpec) -> None:
    assert parse_fault(spec) == want


@pytest.mark.parametrize("spec", ["", "drop", "600:1", "200:1", "429", "429:x", "slow:1",
                                  "teleport:1", "gap:0", "429:1:every=soon"])
def test_parse_fault_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault(spec)


def test_parse_duration_units() -> None:
    assert [parse_duration(x) for x in ("250ms", "3", "2s", "1.5m", "1h")] == [
        0.25, 3.0, 2.0, 90.0, 3600.0]
