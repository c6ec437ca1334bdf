"""REST client against an in-process httpx transport, on trio's mock clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric import rsa

from ingestor.kalshi.errors import (
    KalshiAuthError,
    KalshiNotFoundError,
    KalshiPagingError,
    KalshiRateLimitError,
    KalshiResponseError,
    KalshiServerError,
    KalshiTransportError,
)
from ingestor.kalshi.ratelimit import TokenBucket
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.kalshi.retry import Backoff, RetryPolicy
from ingestor.kalshi.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Signer,
    verify,
)

BASE = "https://kalshi.test/trade-api/v2"
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Handler wrapper that records each request with trio's clock."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(trio.current_time())
        return self.handler(request)


def make_client(
    handler: Handler,
    *,
    max_attempts: int = 4,
    rate: float = 1000,
    burst: float = 1000,
    signer: Signer | None = None,
    backoff: Backoff | None = None,
) -> tuple[KalshiRestClient, Recorder]:
    rec = Recorder(handler)
    client = KalshiRestClient(
        BASE,
        signer=signer,
        limiter=TokenBucket(rate, burst),
        retry=RetryPolicy(
            max_attempts=max_attempts,
            backoff=backoff or Backoff(base=1, factor=2, cap=60, jitter=0),
        ),
        transport=httpx.MockTransport(rec),
    )
    return client, rec


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


def sequence(*responses: httpx.Response) -> Handler:
    it = iter(responses)
    return lambda request: next(it)


# ---- retries --------------------------------------------------------------------------------


async def test_retries_429_with_exponential_backoff_then_succeeds(
    autojump_clock: trio.testing.MockClock,
):
    client, rec = make_client(
        sequence(
            respond(429, {"error": "too many requests"}),
            respond(503, {"error": {"code": "unavailable", "message": "down"}}),
            respond(500, b"oops"),
            respond(200, {"exchange_active": True, "trading_active": True}),
        )
    )
    async with client:
        status = await client.exchange_status()
    assert status.exchange_active is True
    offsets = [t - rec.times[0] for t in rec.times]
    assert offsets == pytest.approx([0, 1, 3, 7])  # backoff 1, 2, 4 (jitter off)
    assert client.stats.retries == 3
    assert client.stats.rate_limited == 1


async def test_retry_after_header_is_honoured(autojump_clock: trio.testing.MockClock):
    client, rec = make_client(
        sequence(
            respond(503, b"", headers={"Retry-After": "12"}),
            respond(200, {"exchange_active": False}),
        )
    )
    async with client:
        await client.exchange_status()
    assert rec.times[1] - rec.times[0] == pytest.approx(12)


async def test_exhausted_retries_raise_never_return_empty(autojump_clock: trio.testing.MockClock):
    client, rec = make_client(
        lambda r: respond(429, {"error": "too many requests"}), max_attempts=3
    )
    async with client:
        with pytest.raises(KalshiRateLimitError) as info:
            async for _ in client.iter_markets():
                pass
    assert info.value.attempts == 3
    assert len(rec.requests) == 3


async def test_server_errors_exhausted_raise_server_error(autojump_clock: trio.testing.MockClock):
    client, rec = make_client(lambda r: respond(502, b"bad gateway"), max_attempts=2)
    async with client:
        with pytest.raises(KalshiServerError):
            await client.get_market("X")
    assert len(rec.requests) == 2


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
async def test_connection_errors_and_timeouts_are_retried(
    autojump_clock: trio.testing.MockClock, exc: Exception
):
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise exc
        return respond(200, {"market": {"ticker": "X", "yes_bid_dollars": "0.1200"}})

    client, _ = make_client(handler)
    async with client:
        market = await client.get_market("X")
    assert market.yes_bid_dollars == Decimal("0.1200")
    assert calls == 3
    assert client.stats.transport_errors == 2


async def test_connection_errors_exhausted_raise_transport_error(
    autojump_clock: trio.testing.MockClock,
):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client, _ = make_client(handler, max_attempts=2)
    async with client:
        with pytest.raises(KalshiTransportError) as info:
            await client.exchange_status()
    assert info.value.attempts == 2


@pytest.mark.parametrize(("status", "cls"), [(401, KalshiAuthError), (404, KalshiNotFoundError)])
async def test_client_errors_are_not_retried(autojump_clock, status, cls):
    client, rec = make_client(lambda r: respond(status, {"error": {"code": "x", "message": "m"}}))
    async with client:
        with pytest.raises(cls):
            await client.get_market("X")
    assert len(rec.requests) == 1


async def test_429_drains_the_shared_limiter(autojump_clock: trio.testing.MockClock):
    client, rec = make_client(
        sequence(
            respond(429, {"error": "too many requests"}), respond(200, {"exchange_active": True})
        ),
        rate=2,
        burst=10,
        backoff=Backoff(base=0, jitter=0),
    )
    async with client:
        await client.exchange_status()
    # no backoff delay, but the drained bucket (2/s) spaces the retry by half a second
    assert rec.times[1] - rec.times[0] == pytest.approx(0.5)


async def test_limiter_paces_requests(autojump_clock: trio.testing.MockClock):
    client, rec = make_client(lambda r: respond(200, {"exchange_active": True}), rate=5, burst=2)
    async with client:
        for _ in range(7):
            await client.exchange_status()
    assert rec.times[-1] - rec.times[0] == pytest.approx(1.0)  # 2 burst + 5 at 5/s


async def test_non_json_success_body_is_an_error(autojump_clock: trio.testing.MockClock):
    client, _ = make_client(lambda r: httpx.Response(200, content=b"<html>"))
    async with client:
        with pytest.raises(KalshiResponseError):
            await client.exchange_status()


async def test_bad_item_is_an_error_naming_the_index(autojump_clock: trio.testing.MockClock):
    client, _ = make_client(
        lambda r: respond(200, {"markets": [{"ticker": "A"}, {"no_ticker": 1}]})
    )
    async with client:
        with pytest.raises(KalshiResponseError, match=r"markets\[1\]"):
            async for _ in client.iter_markets():
                pass


# ---- paging ---------------------------------------------------------------------------------


def paged(pages: dict[str | None, dict[str, Any]]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return respond(200, pages[request.url.params.get("cursor")])

    return handler


@pytest.mark.parametrize("end", [{"cursor": ""}, {"cursor": None}, {}])
async def test_paging_follows_cursor_until_it_ends(autojump_clock, end):
    client, rec = make_client(
        paged(
            {
                None: {"markets": [{"ticker": "A"}, {"ticker": "B"}], "cursor": "c1"},
                "c1": {"markets": [{"ticker": "C"}], "cursor": "c2"},
                "c2": {"markets": [], **end},
            }
        )
    )
    async with client:
        tickers = [m.ticker async for m in client.iter_markets(status="open", limit=2)]
    assert tickers == ["A", "B", "C"]
    assert [r.url.params.get("cursor") for r in rec.requests] == [None, "c1", "c2"]
    assert all(r.url.params["status"] == "open" for r in rec.requests)
    assert all(r.url.params["limit"] == "2" for r in rec.requests)


async def test_pages_expose_cursor_for_resuming(autojump_clock: trio.testing.MockClock):
    client, rec = make_client(
        paged(
            {
                None: {"events": [{"event_ticker": "E1"}], "cursor": "c1"},
                "c1": {
                    "events": [{"event_ticker": "E2", "markets": [{"ticker": "M"}]}],
                    "cursor": "",
                },
            }
        )
    )
    async with client:
        pages = [p async for p in client.event_pages(with_nested_markets=True, min_close_ts=5)]
        resumed = [p async for p in client.event_pages(cursor="c1")]
    assert [(p.cursor, p.next_cursor) for p in pages] == [(None, "c1"), ("c1", None)]
    assert pages[1].items[0].markets[0].ticker == "M"
    assert rec.requests[0].url.params["with_nested_markets"] == "true"
    assert rec.requests[0].url.params["min_close_ts"] == "5"
    assert [e.event_ticker for e in resumed[0].items] == ["E2"]


async def test_repeated_cursor_is_an_error_not_a_loop(autojump_clock: trio.testing.MockClock):
    client, _ = make_client(lambda r: respond(200, {"markets": [], "cursor": "same"}))
    async with client:
        with pytest.raises(KalshiPagingError):
            async for _ in client.market_pages():
                pass


async def test_many_tickers_are_sent_in_chunks(autojump_clock: trio.testing.MockClock):
    def handler(request: httpx.Request) -> httpx.Response:
        names = request.url.params["tickers"].split(",")
        return respond(200, {"markets": [{"ticker": n} for n in names], "cursor": ""})

    client, rec = make_client(handler)
    client.tickers_per_request = 3
    wanted = [f"T{i}" for i in range(8)]
    async with client:
        got = [m.ticker async for m in client.iter_markets(tickers=[*wanted, "T0"])]
    assert got == wanted
    assert len(rec.requests) == 3


# ---- endpoints ------------------------------------------------------------------------------


async def test_endpoints_hit_documented_paths(autojump_clock: trio.testing.MockClock):
    routes: dict[str, Any] = {
        "/trade-api/v2/series": {"series": [{"ticker": "S"}]},
        "/trade-api/v2/series/S": {"series": {"ticker": "S", "frequency": "daily"}},
        "/trade-api/v2/events/E": {"event": {"event_ticker": "E"}, "markets": [{"ticker": "M"}]},
        "/trade-api/v2/markets/M": {"market": {"ticker": "M"}},
        "/trade-api/v2/series/S/markets/M/candlesticks": {
            "ticker": "M",
            "candlesticks": [{"end_period_ts": 60, "volume_fp": "1.00"}],
        },
        "/trade-api/v2/markets/candlesticks": {
            "markets": [
                {"market_ticker": "M", "candlesticks": [{"end_period_ts": 60}]},
                {"market_ticker": "N", "candlesticks": []},
            ]
        },
        "/trade-api/v2/historical/cutoff": {"market_settled_ts": "2025-01-01T00:00:00Z"},
        "/trade-api/v2/historical/markets": {"markets": [{"ticker": "OLD"}], "cursor": ""},
        "/trade-api/v2/historical/markets/OLD": {"market": {"ticker": "OLD"}},
        "/trade-api/v2/historical/markets/OLD/candlesticks": {"candlesticks": []},
        "/trade-api/v2/markets/trades": {"trades": [{"trade_id": "t", "count_fp": "2.00"}]},
    }
    client, rec = make_client(lambda r: respond(200, routes[r.url.path]))
    async with client:
        assert [s.ticker for s in await client.list_series(category="Weather")] == ["S"]
        assert (await client.get_series("S")).frequency == "daily"
        event = await client.get_event("E")
        assert [m.ticker for m in event.markets or []] == ["M"]
        assert (await client.get_market("M")).ticker == "M"
        candles = await client.get_candlesticks("S", "M", start_ts=0, end_ts=120, period_interval=1)
        assert candles[0].volume_fp == Decimal("1.00")
        batch = await client.get_batch_candlesticks(
            ["M", "N"], start_ts=0, end_ts=120, period_interval=60
        )
        assert sorted(batch) == ["M", "N"] and batch["N"] == []
        assert (await client.historical_cutoff()).market_settled_ts is not None
        assert [m.ticker async for m in client.iter_historical_markets()] == ["OLD"]
        assert (await client.get_historical_market("OLD")).ticker == "OLD"
        assert (
            await client.get_historical_candlesticks(
                "OLD", start_ts=0, end_ts=1, period_interval=1440
            )
            == []
        )
        trades = [t async for p in client.trade_pages(ticker="M") for t in p.items]
        assert trades[0].count_fp == Decimal("2.00")
    batch_req = next(r for r in rec.requests if r.url.path.endswith("/markets/candlesticks"))
    assert batch_req.url.params["market_tickers"] == "M,N"
    assert batch_req.url.params["period_interval"] == "60"


async def test_candle_arguments_are_checked_before_any_request(autojump_clock):
    client, rec = make_client(lambda r: respond(200, {}))
    async with client:
        with pytest.raises(ValueError, match="1, 60 or 1440"):
            await client.get_candlesticks("S", "M", start_ts=0, end_ts=1, period_interval=5)
        with pytest.raises(ValueError, match="before"):
            await client.get_candlesticks("S", "M", start_ts=9, end_ts=1, period_interval=1)
        with pytest.raises(ValueError, match="at most 100"):
            await client.get_batch_candlesticks(
                [f"T{i}" for i in range(101)], start_ts=0, end_ts=1, period_interval=1
            )
    assert rec.requests == []


async def test_requests_are_signed_over_the_full_path_without_query(
    autojump_clock: trio.testing.MockClock, rsa_key: rsa.RSAPrivateKey
):
    client, rec = make_client(
        lambda r: respond(200, {"markets": [], "cursor": ""}), signer=Signer("kid", rsa_key)
    )
    async with client:
        async for _ in client.iter_markets(status="open"):
            pass
    request = rec.requests[0]
    assert request.url.query  # a query was sent, and is not part of the signature
    assert request.headers[HEADER_KEY] == "kid"
    assert verify(
        rsa_key.public_key(),
        request.headers[HEADER_SIGNATURE],
        request.headers[HEADER_TIMESTAMP],
        "GET",
        "/trade-api/v2/markets",
    )


async def test_public_reads_work_without_credentials(autojump_clock: trio.testing.MockClock):
    client, rec = make_client(lambda r: respond(200, {"exchange_active": True}))
    async with client:
        await client.exchange_status()
    assert HEADER_SIGNATURE not in rec.requests[0].headers
