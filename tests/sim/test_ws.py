"""WS protocol of the simulator: commands, replies, error codes, data frames, heartbeats."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import rsa
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Request

from ingestor.sim import Sim, open_sim
from ingestor.sim.ws_protocol import SubscriptionView
from tests.sim.sim_client import WS_PATH, auth_headers, command, recv, send, sim_kwargs, ws_client


async def test_subscribe_replies_once_per_channel_with_own_sid(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    async with ws_client(sim, private_key) as ws:
        replies = await command(ws, 1, "subscribe", replies=2,
                                channels=["ticker", "market_lifecycle_v2"])
        assert replies == [
            {"id": 1, "type": "subscribed", "msg": {"channel": "ticker", "sid": 1}},
            {"id": 1, "type": "subscribed", "msg": {"channel": "market_lifecycle_v2", "sid": 2}},
        ]
        (views,) = sim.subscriptions().values()
        assert views == [SubscriptionView("ticker", 1, None),
                         SubscriptionView("market_lifecycle_v2", 2, None)]


async def test_ticker_frames_carry_current_fields_and_no_seq(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["ticker"])
        ticks = sim.emit_ticks(20)
        for tick in ticks:
            frame = await recv(ws)
            assert set(frame) == {"type", "sid", "msg"}
            assert frame["type"] == "ticker" and frame["sid"] == 1
            msg = frame["msg"]
            assert msg == sim.exchange.ticker_msg(tick)
            assert msg["ts_ms"] == tick.ts_ms and msg["ts"] == tick.ts_ms // 1000
            assert msg["market_id"] == sim.exchange.markets[tick.ticker].market_id
            assert msg["yes_bid_dollars"] == f"0.{tick.yes_bid:02d}00"


async def test_scripted_ticks_arrive_exactly_once_in_order(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["ticker"])
        sent = sim.emit_ticks(300)
        got = [(await recv(ws))["msg"] for _ in sent]
        assert got == [sim.exchange.ticker_msg(t) for t in sent]
        assert len({(m["market_ticker"], m["ts_ms"]) for m in got}) == 300
        await send(ws, 2, "list_subscriptions")
        assert (await recv(ws))["id"] == 2, "no extra ticker frames were sent"


async def test_update_subscription_adds_and_deletes_markets(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    a, b, c = sim.exchange.active_tickers[:3]
    async with ws_client(sim, private_key) as ws:
        (sub,) = await command(ws, 1, "subscribe", channels=["ticker"], market_ticker=a)
        sid = sub["msg"]["sid"]
        (ok,) = await command(ws, 2, "update_subscription", sid=sid,
                              market_tickers=[b, c], action="add_markets")
        assert ok == {"id": 2, "sid": sid, "seq": 1, "type": "ok",
                      "msg": {"market_tickers": sorted([a, b, c])}}
        (ok,) = await command(ws, 3, "update_subscription", sids=[sid],
                              market_tickers=[a], action="delete_markets")
        assert ok["seq"] == 2 and ok["msg"] == {"market_tickers": sorted([b, c])}
        (views,) = sim.subscriptions().values()
        assert views == [SubscriptionView("ticker", sid, frozenset({b, c}))]
        sent = sim.emit_ticks(6, [a, b, c])
        wanted = [t for t in sent if t.ticker != a]
        got = [(await recv(ws))["msg"]["market_ticker"] for _ in wanted]
        assert got == [t.ticker for t in wanted]


async def test_list_and_unsubscribe(sim: Sim, private_key: rsa.RSAPrivateKey) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", replies=3,
                      channels=["ticker", "trade", "market_lifecycle_v2"])
        (listing,) = await command(ws, 2, "list_subscriptions")
        assert listing == {"id": 2, "type": "ok", "msg": [
            {"channel": "ticker", "sid": 1}, {"channel": "trade", "sid": 2},
            {"channel": "market_lifecycle_v2", "sid": 3}]}
        replies = await command(ws, 3, "unsubscribe", replies=2, sids=[1, 3])
        assert replies == [{"id": 3, "sid": 1, "seq": 1, "type": "unsubscribed"},
                           {"id": 3, "sid": 3, "seq": 1, "type": "unsubscribed"}]
        assert list(sim.subscriptions().values()) == [[SubscriptionView("trade", 2, None)]]


ERROR_CASES: list[tuple[str, Any, int]] = [
    ("bad json", "{not json", 1),
    ("not an object", "[1, 2]", 1),
    ("unknown command", {"id": 5, "cmd": "dance"}, 5),
    ("no params", {"id": 5, "cmd": "subscribe"}, 2),
    ("no channels", {"id": 5, "cmd": "subscribe", "params": {"channels": []}}, 3),
    ("unknown channel", {"id": 5, "cmd": "subscribe", "params": {"channels": ["ticker_v2"]}}, 8),
    ("unknown market", {"id": 5, "cmd": "subscribe",
                        "params": {"channels": ["ticker"], "market_ticker": "NOPE"}}, 16),
    ("no sids", {"id": 5, "cmd": "unsubscribe", "params": {}}, 4),
    ("unknown sid", {"id": 5, "cmd": "unsubscribe", "params": {"sids": [99]}}, 7),
    ("two sids", {"id": 5, "cmd": "update_subscription",
                  "params": {"sids": [1, 2], "action": "add_markets"}}, 12),
    ("update unknown sid", {"id": 5, "cmd": "update_subscription",
                            "params": {"sid": 42, "action": "add_markets"}}, 7),
    ("no action", {"id": 5, "cmd": "update_subscription", "params": {"sid": 1}}, 15),
    ("snapshot on ticker", {"id": 5, "cmd": "update_subscription",
                            "params": {"sid": 1, "action": "get_snapshot"}}, 13),
    ("no tickers", {"id": 5, "cmd": "update_subscription",
                    "params": {"sid": 1, "action": "add_markets"}}, 14),
]


@pytest.mark.parametrize(("case", "payload", "code"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
async def test_error_codes(
    sim: Sim, private_key: rsa.RSAPrivateKey, case: str, payload: Any, code: int
) -> None:
    ticker = sim.exchange.active_tickers[0]
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["ticker"], market_tickers=[ticker])
        await ws.send_message(payload if isinstance(payload, str) else json.dumps(payload))
        reply = await recv(ws)
        assert reply["type"] == "error"
        assert reply["msg"]["code"] == code
        assert reply["id"] == (0 if isinstance(payload, str) else 5)


async def test_already_subscribed_is_error_6(sim: Sim, private_key: rsa.RSAPrivateKey) -> None:
    a, b = sim.exchange.active_tickers[:2]
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["ticker", "market_lifecycle_v2"], replies=2,
                      market_tickers=[a])
        (err,) = await command(ws, 2, "subscribe", channels=["ticker"], market_tickers=[a, b])
        assert err["msg"] == {"code": 6, "msg": "Already subscribed", "channel": "ticker",
                              "market_ticker": a}
        (err,) = await command(ws, 3, "subscribe", channels=["market_lifecycle_v2"])
        assert err["msg"]["code"] == 6
        (ok,) = await command(ws, 4, "subscribe", channels=["ticker"], market_tickers=[b])
        assert ok["type"] == "subscribed" and ok["msg"]["sid"] == 3


async def test_initial_snapshot_sends_current_state(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    ex = sim.exchange
    ticker = max(ex.active_tickers, key=lambda t: len(ex.markets[t].ticks))
    async with ws_client(sim, private_key) as ws:
        sub, snap = await command(ws, 1, "subscribe", replies=2, channels=["ticker"],
                                  market_ticker=ticker, send_initial_snapshot=True)
        assert sub["type"] == "subscribed"
        assert snap == {"type": "ticker", "sid": 1,
                        "msg": ex.ticker_msg(ex.markets[ticker].ticks[-1])}


async def test_trade_channel_follows_ticks_with_trades(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["trade"])
        trades = [t.trade for t in sim.emit_ticks(60) if t.trade is not None]
        assert trades
        for trade in trades:
            frame = await recv(ws)
            assert frame["type"] == "trade" and frame["sid"] == 1
            msg = frame["msg"]
            assert msg["trade_id"] == trade.trade_id
            assert msg["count_fp"] == f"{trade.count_cc // 100}.{trade.count_cc % 100:02d}"
            assert msg["taker_outcome_side"] == trade.taker_outcome_side
            assert msg["ts_ms"] == trade.ts_ms


async def test_lifecycle_channel_streams_what_the_exchange_logs(
    sim: Sim, private_key: rsa.RSAPrivateKey
) -> None:
    ex = sim.exchange
    async with ws_client(sim, private_key) as ws:
        await command(ws, 1, "subscribe", channels=["market_lifecycle_v2"],
                      market_tickers=[ex.active_tickers[0]])
        already = len(ex.lifecycle_messages)
        sim.advance(3 * 3600)
        expected = ex.lifecycle_messages[already:]
        kinds = {lm.msg.get("event_type", lm.type) for lm in expected}
        assert {"event_lifecycle", "created", "determined", "settled"} <= kinds
        for lm in expected:
            assert await recv(ws) == {"type": lm.type, "sid": 1, "msg": lm.msg}


async def test_legacy_ticker_frames_use_integers(
    key_pair: tuple[bytes, bytes], private_key: rsa.RSAPrivateKey
) -> None:
    async with (
        open_sim(**sim_kwargs(key_pair, legacy=True)) as sim,
        ws_client(sim, private_key) as ws,
    ):
        await command(ws, 1, "subscribe", channels=["ticker"])
        (tick,) = sim.emit_ticks(1)
        msg = (await recv(ws))["msg"]
        assert msg == {"market_ticker": tick.ticker, "price": tick.price,
                       "yes_bid": tick.yes_bid, "yes_ask": tick.yes_ask,
                       "volume": tick.volume_cc // 100, "open_interest": tick.oi_cc // 100,
                       "dollar_volume": tick.notional // 10000,
                       "dollar_open_interest": tick.oi_cc * tick.price // 10000,
                       "ts": tick.ts_ms // 1000}


async def test_server_sends_heartbeat_pings(
    key_pair: tuple[bytes, bytes], private_key: rsa.RSAPrivateKey
) -> None:
    async with open_sim(**sim_kwargs(key_pair, ping_interval=0.05)) as sim:
        stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
        async with stream:
            ws = WSConnection(ConnectionType.CLIENT)
            headers = [(k.encode(), v.encode()) for k, v in auth_headers(private_key,
                                                                         WS_PATH).items()]
            await stream.send_all(ws.send(Request(host="127.0.0.1", target=WS_PATH,
                                                  extra_headers=headers)))
            seen: list[object] = []
            with trio.fail_after(5):
                while not any(isinstance(e, Ping) for e in seen):
                    ws.receive_data(await stream.receive_some(4096))
                    seen.extend(ws.events())
            assert isinstance(seen[0], AcceptConnection)
            ping = next(e for e in seen if isinstance(e, Ping))
            assert ping.payload == b"heartbeat"
