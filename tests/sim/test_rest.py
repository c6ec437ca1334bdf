"""REST endpoints of the simulator, exercised over HTTP with httpx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ingestor.sim import Sim, open_sim
from ingestor.sim.model import STATUS_FILTERS
from tests.sim.sim_client import START, sim_kwargs


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def walk(client: httpx.AsyncClient, path: str, key: str, **params: Any) -> list[Any]:
    """Every item of a cursor-paged listing."""
    items: list[Any] = []
    cursor = None
    while True:
        q = dict(params)
        if cursor:
            q["cursor"] = cursor
        body = await get_json(client, path, **q)
        items.extend(body[key])
        cursor = body["cursor"]
        assert isinstance(cursor, str)
        if cursor == "":
            return items


async def test_exchange_status_and_series(client: httpx.AsyncClient, sim: Sim) -> None:
    status = await get_json(client, "/exchange/status")
    assert status["exchange_active"] is True and status["trading_active"] is True
    series = (await get_json(client, "/series"))["series"]
    assert {s["ticker"] for s in series} == set(sim.exchange.series)
    one = await get_json(client, "/series/SIMBTCH", include_volume="true")
    assert one["series"]["frequency"] == "hourly" and "volume_fp" in one["series"]
    r = await client.get("/series/NOPE")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_markets_page_by_cursor_without_duplicates(
    client: httpx.AsyncClient, sim: Sim
) -> None:
    total = len(sim.exchange.markets)
    assert total > 100
    first = await get_json(client, "/markets")
    assert len(first["markets"]) == 100 and first["cursor"] != ""
    items = await walk(client, "/markets", "markets", limit=17)
    tickers = [m["ticker"] for m in items]
    assert len(tickers) == len(set(tickers)) == total
    assert set(tickers) == set(sim.exchange.markets)
    assert all("series_ticker" not in m for m in items)


async def test_market_limits(client: httpx.AsyncClient) -> None:
    assert (await client.get("/markets", params={"limit": 1000})).status_code == 200
    r = await client.get("/markets", params={"limit": 1001})
    assert r.status_code == 400 and "limit" in r.json()["error"]["message"]
    assert (await client.get("/markets", params={"cursor": "garbage!"})).status_code == 400


async def test_events_limit_is_200_and_pages(client: httpx.AsyncClient, sim: Sim) -> None:
    assert (await client.get("/events", params={"limit": 201})).status_code == 400
    assert (await client.get("/events", params={"limit": 0})).status_code == 400
    items = await walk(client, "/events", "events", limit=9)
    assert sorted(e["event_ticker"] for e in items) == sorted(sim.exchange.events)
    assert all("markets" not in e for e in items)


@pytest.mark.parametrize("value", list(STATUS_FILTERS))
async def test_market_status_filter_maps_to_response_statuses(
    client: httpx.AsyncClient, sim: Sim, value: str
) -> None:
    if value == "paused":
        sim.exchange.deactivate(sim.exchange.active_tickers[0], 600)
    items = await walk(client, "/markets", "markets", status=value, limit=1000)
    expected = {t for t, m in sim.exchange.markets.items() if m.status in STATUS_FILTERS[value]}
    assert expected, f"the world should hold {value} markets"
    assert {m["ticker"] for m in items} == expected
    assert {m["status"] for m in items} <= STATUS_FILTERS[value]


async def test_bad_status_values_are_400(client: httpx.AsyncClient) -> None:
    for path, value in [("/markets", "finalized"), ("/markets", "open,closed"),
                        ("/markets", "active"), ("/events", "paused"), ("/events", "finalized")]:
        r = await client.get(path, params={"status": value})
        assert r.status_code == 400, (path, value)
        assert r.json()["error"]["code"] == "invalid_parameters"


async def test_event_matches_status_if_any_market_matches(
    client: httpx.AsyncClient, sim: Sim
) -> None:
    ex = sim.exchange
    ticker = next(t for t in ex.active_tickers if t.startswith("SIMBTCH-"))
    event_ticker = ex.markets[ticker].event_ticker
    ex.update_close_time(ticker, int(ex.now) + 1)
    sim.advance(2)
    statuses = {ex.markets[t].status for t in ex.events[event_ticker].market_tickers}
    assert {"active", "closed"} <= statuses
    for value in ("open", "closed"):
        events = await walk(client, "/events", "events", status=value)
        got = {e["event_ticker"] for e in events}
        want = {e.event_ticker for e in ex.events.values()
                if any(ex.markets[t].status in STATUS_FILTERS[value]
                       for t in e.market_tickers if t in ex.markets)}
        assert got == want
        assert event_ticker in got


async def test_filter_compatibility_rules(client: httpx.AsyncClient) -> None:
    bad: list[dict[str, Any]] = [
        {"status": "closed", "min_created_ts": START},
        {"status": "settled", "max_created_ts": START},
        {"status": "open", "min_close_ts": START},
        {"status": "settled", "max_close_ts": START},
        {"status": "open", "min_settled_ts": START},
        {"min_updated_ts": START},
        {"min_updated_ts": START, "mve_filter": "exclude", "status": "open"},
        {"mve_filter": "sometimes"},
    ]
    for params in bad:
        r = await client.get("/markets", params=params)
        assert r.status_code == 400, params
    good: list[dict[str, Any]] = [
        {"status": "open", "min_created_ts": START - 86400},
        {"status": "closed", "min_close_ts": START - 86400},
        {"status": "settled", "min_settled_ts": START - 86400},
        {"min_updated_ts": START - 86400, "mve_filter": "exclude", "series_ticker": "SIMBTCH"},
    ]
    for params in good:
        r = await client.get("/markets", params=params)
        assert r.status_code == 200, (params, r.text)


async def test_market_filters(client: httpx.AsyncClient, sim: Sim) -> None:
    ex = sim.exchange
    by_series = await walk(client, "/markets", "markets", series_ticker="SIMTEMPD")
    assert by_series and all(m["event_ticker"].startswith("SIMTEMPD-") for m in by_series)
    event_ticker = by_series[0]["event_ticker"]
    by_event = await walk(client, "/markets", "markets", event_ticker=event_ticker)
    assert {m["ticker"] for m in by_event} == set(ex.events[event_ticker].market_tickers)
    some = sorted(ex.markets)[:3]
    by_tickers = await walk(client, "/markets", "markets", tickers=",".join(some))
    assert sorted(m["ticker"] for m in by_tickers) == some
    cutoff = int(ex.now) + 1800
    closing = await walk(client, "/markets", "markets", min_close_ts=cutoff, limit=1000)
    assert {m["ticker"] for m in closing} == {
        t for t, m in ex.markets.items() if m.close_ts >= cutoff}


async def test_events_nested_markets_and_filters(client: httpx.AsyncClient, sim: Sim) -> None:
    ex = sim.exchange
    body = await get_json(client, "/events", series_ticker="SIMBTCH", with_nested_markets="true",
                          status="open")
    assert body["events"]
    for e in body["events"]:
        assert e["series_ticker"] == "SIMBTCH" and e["strike_period"] == "hour"
        assert {m["ticker"] for m in e["markets"]} == set(ex.events[e["event_ticker"]].market_tickers)
    soon = int(ex.now) + 3 * 86400
    late = await walk(client, "/events", "events", min_close_ts=soon)
    assert {e["event_ticker"] for e in late} == {
        e.event_ticker for e in ex.events.values()
        if any(ex.markets[t].close_ts >= soon for t in e.market_tickers if t in ex.markets)}
    picked = sorted(ex.events)[:2]
    got = await get_json(client, "/events", tickers=",".join(picked))
    assert sorted(e["event_ticker"] for e in got["events"]) == picked


async def test_single_event_and_market(client: httpx.AsyncClient, sim: Sim) -> None:
    ticker = sim.exchange.active_tickers[0]
    market = (await get_json(client, f"/markets/{ticker}"))["market"]
    assert market["status"] == "active" and market["yes_bid_dollars"].startswith("0.")
    body = await get_json(client, f"/events/{market['event_ticker']}", with_nested_markets="true")
    assert ticker in {m["ticker"] for m in body["markets"]}
    assert ticker in {m["ticker"] for m in body["event"]["markets"]}
    plain = await get_json(client, f"/events/{market['event_ticker']}")
    assert "markets" not in plain["event"] and plain["markets"]
    assert (await client.get("/markets/NOPE-1")).status_code == 404
    assert (await client.get("/events/NOPE")).status_code == 404
    assert (await client.get("/nowhere")).status_code == 404
    assert (await client.post("/markets")).status_code == 405


async def test_historical_partition(client: httpx.AsyncClient, sim: Sim) -> None:
    ex = sim.exchange
    cutoff = await get_json(client, "/historical/cutoff")
    assert set(cutoff) >= {"market_settled_ts", "trades_created_ts"}
    hist = await walk(client, "/historical/markets", "markets", limit=5)
    assert {m["ticker"] for m in hist} == set(ex.historical_markets)
    ticker = hist[0]["ticker"]
    assert hist[0]["status"] == "finalized"
    assert (await client.get(f"/markets/{ticker}")).status_code == 404
    assert (await get_json(client, f"/historical/markets/{ticker}"))["market"]["ticker"] == ticker
    live = sim.exchange.active_tickers[0]
    assert (await client.get(f"/historical/markets/{live}")).status_code == 404
    m = ex.historical_markets[ticker]
    q = {"start_ts": m.open_ts, "end_ts": m.close_ts, "period_interval": 60}
    r = await client.get(f"/series/{m.series_ticker}/markets/{ticker}/candlesticks", params=q)
    assert r.status_code == 404
    body = await get_json(client, f"/historical/markets/{ticker}/candlesticks", **q)
    assert body["candlesticks"] == ex.candles(ticker, 60, m.open_ts, m.close_ts)
    assert body["candlesticks"]
    all_events = await walk(client, "/events", "events", with_nested_markets="true")
    nested = {mk["ticker"] for e in all_events for mk in e["markets"]}
    assert not nested & set(ex.historical_markets)
    assert m.event_ticker in {e["event_ticker"] for e in all_events}


async def test_candlestick_endpoint_rules(client: httpx.AsyncClient, sim: Sim) -> None:
    ex = sim.exchange
    ticker = max(ex.markets, key=lambda t: len(ex.markets[t].ticks))
    series = ex.markets[ticker].series_ticker
    path = f"/series/{series}/markets/{ticker}/candlesticks"
    start = START - 12 * 3600
    end = START
    for period in (1, 60, 1440):
        body = await get_json(client, path, start_ts=start, end_ts=end, period_interval=period)
        assert body["ticker"] == ticker
        assert body["candlesticks"] == ex.candles(ticker, period, start, end)
    assert body["candlesticks"] or period == 1440
    r = await client.get(path, params={"start_ts": start, "end_ts": end, "period_interval": 5})
    assert r.status_code == 400
    r = await client.get(path, params={"start_ts": end - 5001 * 60, "end_ts": end,
                                       "period_interval": 1})
    assert r.status_code == 400 and "max candlesticks: 5000" in r.json()["error"]["message"]
    r = await client.get(path, params={"end_ts": end, "period_interval": 1})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Query argument start_ts is required"
    r = await client.get(f"/series/SIMETHH/markets/{ticker}/candlesticks",
                         params={"start_ts": start, "end_ts": end, "period_interval": 1})
    assert r.status_code == 404 or series == "SIMETHH"


async def test_batch_candlesticks(client: httpx.AsyncClient, sim: Sim) -> None:
    ex = sim.exchange
    tickers = ex.active_tickers[:3]
    start, end = START - 6 * 3600, START
    body = await get_json(client, "/markets/candlesticks", market_tickers=",".join(tickers),
                          start_ts=start, end_ts=end, period_interval=60)
    got = {m["market_ticker"]: m["candlesticks"] for m in body["markets"]}
    assert got == {t: ex.candles(t, 60, start, end) for t in tickers}
    r = await client.get("/markets/candlesticks", params={
        "market_tickers": ",".join(f"X{i}" for i in range(101)), "start_ts": start,
        "end_ts": end, "period_interval": 60})
    assert r.status_code == 400
    r = await client.get("/markets/candlesticks", params={
        "market_tickers": ",".join(tickers), "start_ts": end - 4000 * 60, "end_ts": end,
        "period_interval": 1})
    assert r.status_code == 400 and "10000" in r.json()["error"]["message"]


async def test_trades_newest_first_with_cursor(client: httpx.AsyncClient, sim: Sim) -> None:
    ticker = max(sim.exchange.markets, key=lambda t: len(sim.exchange.markets[t].trades))
    trades = await walk(client, "/markets/trades", "trades", ticker=ticker, limit=50)
    want = [tr.trade_id for tr in reversed(sim.exchange.markets[ticker].trades)]
    assert [t["trade_id"] for t in trades] == want
    assert all(t["count_fp"].endswith(("0", "5")) for t in trades)


async def test_token_bucket_answers_429_without_retry_after(key_pair: tuple[bytes, bytes]) -> None:
    async with (
        open_sim(**sim_kwargs(key_pair, rate=0.001, burst=3)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url) as client,
    ):
        codes = [(await client.get("/exchange/status")).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await client.get("/markets")
        assert r.status_code == 429
        assert r.json() == {"error": "too many requests"}
        assert "retry-after" not in r.headers
        assert not any(h.startswith("x-ratelimit") for h in r.headers)


async def test_legacy_mode_rest_shapes(key_pair: tuple[bytes, bytes]) -> None:
    async with (
        open_sim(**sim_kwargs(key_pair, legacy=True)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url) as client,
    ):
        ex = sim.exchange
        ticker = max(ex.active_tickers, key=lambda t: len(ex.markets[t].ticks))
        market = (await get_json(client, f"/markets/{ticker}"))["market"]
        assert isinstance(market["yes_bid"], int) and isinstance(market["open_interest"], int)
        assert "yes_bid_dollars" not in market and "volume_fp" not in market
        body = await get_json(client, f"/series/{market['event_ticker'].split('-')[0]}/markets/"
                              f"{ticker}/candlesticks", start_ts=START - 6 * 3600, end_ts=START,
                              period_interval=60)
        assert body["candlesticks"]
        c = body["candlesticks"][-1]
        assert isinstance(c["yes_ask"]["close"], int) and isinstance(c["volume"], int)


async def test_statuses_follow_the_manual_clock(client: httpx.AsyncClient, sim: Sim) -> None:
    ex = sim.exchange
    m = next(m for m in ex.markets.values()
             if m.status == "initialized" and m.series_ticker == "SIMBTCH")

    async def status() -> str:
        return (await get_json(client, f"/markets/{m.ticker}"))["market"]["status"]

    assert await status() == "initialized"
    sim.advance(m.open_ts - ex.now)
    assert await status() == "active"
    sim.advance(m.close_ts - ex.now)
    assert await status() == "closed"
    sim.advance(m.determine_delay_s)
    market = (await get_json(client, f"/markets/{m.ticker}"))["market"]
    assert market["status"] == "determined" and market["result"] in ("yes", "no")
    sim.advance(m.settle_delay_s)
    market = (await get_json(client, f"/markets/{m.ticker}"))["market"]
    assert market["status"] == "finalized" and market["settlement_ts"] is not None
    settled = await walk(client, "/markets", "markets", status="settled", limit=1000)
    assert m.ticker in {x["ticker"] for x in settled}


async def test_fast_clock_lists_and_settles_new_markets(key_pair: tuple[bytes, bytes]) -> None:
    async with (
        open_sim(**sim_kwargs(key_pair, manual_clock=False, speed=20000.0)) as sim,
        httpx.AsyncClient(base_url=sim.rest_url) as client,
    ):
        before = set(sim.exchange.markets)

        def a_new_market_settled() -> bool:
            return any(m.status == "finalized" for t, m in sim.exchange.markets.items()
                       if t not in before)

        await sim.wait_for(a_new_market_settled)
        new = await walk(client, "/markets", "markets", min_created_ts=sim.exchange.start_ts + 1)
        assert new and {m["ticker"] for m in new} <= set(sim.exchange.markets) - before
        assert {m["status"] for m in new} & {"finalized", "active", "initialized"}
