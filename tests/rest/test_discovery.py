"""Discovery against the simulator: exact catalogue, active set, lifecycle, failures, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from ingestor.db import ingest_state
from ingestor.db.connect import Database
from ingestor.discovery import DiscoveryConfig, LifecycleApplier, discovery_pass
from ingestor.kalshi.errors import KalshiServerError
from ingestor.kalshi.rest import KalshiRestClient
from ingestor.sim import Sim, open_sim
from ingestor.sim.model import ACTIVE, INACTIVE

from .conftest import RecordingTransport, make_client, rest_settings, sim_now
from .expect import discovered_events, event_columns, live_markets, market_columns

CONFIG = DiscoveryConfig.from_settings(rest_settings())


def _rows(db_url: str, query: str) -> list[dict]:
    with psycopg.connect(db_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query)
        return list(cur.fetchall())


def _assert_catalog(db_url: str, sim: Sim) -> None:
    ex = sim.exchange
    events = discovered_events(ex)
    assert events, "the simulator should have open hourly/daily events"
    stored_events = {r["event_ticker"]: r for r in _rows(db_url, "SELECT * FROM events")}
    assert set(stored_events) == {e.event_ticker for e in events}
    for ev in events:
        row = stored_events[ev.event_ticker]
        for name, value in event_columns(ex, ev).items():
            assert row[name] == value, (ev.event_ticker, name)
    markets = [m for ev in events for m in live_markets(ex, ev)]
    stored = {r["ticker"]: r for r in _rows(db_url, "SELECT * FROM markets")}
    assert set(stored) == {m.ticker for m in markets}
    for m in markets:
        row = stored[m.ticker]
        for name, value in market_columns(ex, m).items():
            assert row[name] == value, (m.ticker, name, row[name], value)
    active = {r["ticker"]: r for r in _rows(db_url, "SELECT * FROM active_markets")}
    expected_active = {m.ticker: m for m in markets if m.status in (ACTIVE, INACTIVE)}
    assert set(active) == set(expected_active)
    for ticker, m in expected_active.items():
        row = active[ticker]
        assert row["status"] == m.status
        assert row["close_time"] == datetime.fromtimestamp(m.close_ts, UTC)
        assert row["open_time"] == datetime.fromtimestamp(m.open_ts, UTC)
        assert row["series_ticker"] == m.series_ticker
        assert row["strike_period"] == ex.series[m.series_ticker].strike_period


async def test_discovery_stores_exactly_the_filtered_catalogue(
    sim: Sim, client: KalshiRestClient, rest_db: Database, db_url: str
) -> None:
    result = await discovery_pass(client, rest_db, CONFIG, now=sim_now(sim))
    _assert_catalog(db_url, sim)
    assert result.errors == 0
    assert result.active == len(_rows(db_url, "SELECT ticker FROM active_markets"))
    with psycopg.connect(db_url) as conn:
        entry = ingest_state.read(conn, "last_discovery_ts")
    assert entry is not None and entry.updated_by == "rest"


async def test_discovery_legacy_payloads_are_stored_as_dollars(
    role_url: Callable[[str], str], db_url: str
) -> None:
    async with open_sim(
        seed=3, markets=14, manual_clock=True, rate=100_000, burst=100_000, tick_rate=0, legacy=True
    ) as sim:
        transport = RecordingTransport()
        db = Database(role_url("rest"), max_size=2).open()
        try:
            async with make_client(sim, transport) as c:
                await discovery_pass(c, db, CONFIG, now=sim_now(sim))
            _assert_catalog(db_url, sim)
        finally:
            db.close()
    prices = _rows(db_url, "SELECT yes_bid_dollars, yes_ask_dollars FROM markets")
    assert all(p["yes_ask_dollars"] is None or p["yes_ask_dollars"] <= 1 for p in prices)


async def test_second_pass_updates_known_markets_and_drops_ended_ones(
    sim: Sim, client: KalshiRestClient, rest_db: Database, db_url: str
) -> None:
    await discovery_pass(client, rest_db, CONFIG, now=sim_now(sim))
    before = {r["ticker"] for r in _rows(db_url, "SELECT ticker FROM active_markets")}
    sim.advance(2 * 3600)  # hourly markets close, determine and settle; new ones open
    await discovery_pass(client, rest_db, CONFIG, now=sim_now(sim))
    after = {r["ticker"] for r in _rows(db_url, "SELECT ticker FROM active_markets")}
    assert before - after, "closed markets must leave the active set"
    assert after - before, "newly opened markets must join the active set"
    # every market the API still lists was re-upserted with its current status
    ex = sim.exchange
    for ev in discovered_events(ex):
        for m in live_markets(ex, ev):
            row = _rows(db_url, f"SELECT status FROM markets WHERE ticker = '{m.ticker}'")
            assert row[0]["status"] == m.status


async def test_failed_pass_keeps_active_set_and_timestamp(
    sim: Sim, transport: RecordingTransport, rest_db: Database, db_url: str
) -> None:
    async with make_client(sim, transport, retries=1) as c:
        await discovery_pass(c, rest_db, CONFIG, now=sim_now(sim))
        with psycopg.connect(db_url) as conn:
            stamp = ingest_state.read(conn, "last_discovery_ts")
            conn.execute("UPDATE active_markets SET last_seen_at = last_seen_at - interval '1 h'")
        active = {r["ticker"] for r in _rows(db_url, "SELECT ticker FROM active_markets")}
        transport.rules.append(
            lambda r: (
                httpx.Response(500, json={"error": {"code": "x", "message": "down"}})
                if r.url.path.endswith("/events")
                else None
            )
        )
        with pytest.raises(KalshiServerError):
            await discovery_pass(c, rest_db, CONFIG, now=sim_now(sim))
    assert {r["ticker"] for r in _rows(db_url, "SELECT ticker FROM active_markets")} == active
    with psycopg.connect(db_url) as conn:
        assert ingest_state.read(conn, "last_discovery_ts") == stamp


def _eligible(body: dict) -> list[dict]:
    return [
        e
        for e in body["events"]
        if e.get("strike_period") in ("hour", "day") and len(e.get("markets") or []) > 1
    ]


def _mangle(body: dict) -> dict:
    """Break one event, one market; strip fields; add unknown ones; put one market in cents."""
    events = _eligible(body)
    events[0].pop("event_ticker")  # no key: skipped
    second = events[1]
    second["mutually_exclusive"] = "sometimes"  # wrong type: dropped, event kept
    second["brand_new_field"] = {"x": 1}
    for key in ("title", "sub_title", "category"):
        second.pop(key)
    m0 = second["markets"][0]
    m0["yes_bid_dollars"] = "abc"  # bad price: dropped, market kept
    m0["surprise"] = [1, 2]
    second["markets"][1] = {"title": "no ticker"}  # skipped alone
    third = events[2]["markets"][0]
    for name in ("yes_bid_dollars", "yes_ask_dollars", "last_price_dollars"):
        third.pop(name)
    third.update(yes_bid=0, yes_ask=37, last_price=0)
    return body


async def test_broken_records_are_counted_and_never_abort_the_pass(
    sim: Sim, transport: RecordingTransport, rest_db: Database, db_url: str
) -> None:
    mangled: dict[str, str] = {}

    def rule(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith("/events") or mangled:
            return None
        body = json.loads(sim.rest.handle(_as_sim_request(request)).body)
        events = _eligible(body)
        mangled.update(
            broken=events[1]["event_ticker"],
            market=events[1]["markets"][0]["ticker"],
            legacy=events[2]["markets"][0]["ticker"],
        )
        return httpx.Response(200, json=_mangle(body))

    transport.rules.append(rule)
    async with make_client(sim, transport) as c:
        result = await discovery_pass(c, rest_db, CONFIG, now=sim_now(sim))
    assert result.errors >= 2  # the event without a key and the market without one
    event = _rows(db_url, f"SELECT * FROM events WHERE event_ticker = '{mangled['broken']}'")[0]
    assert event["title"] is None and event["mutually_exclusive"] is None
    assert event["raw"]["brand_new_field"] == {"x": 1}
    assert event["raw"]["mutually_exclusive"] == "sometimes"
    market = _rows(db_url, f"SELECT * FROM markets WHERE ticker = '{mangled['market']}'")[0]
    assert market["yes_bid_dollars"] is None
    assert market["raw"]["surprise"] == [1, 2]
    assert market["yes_ask_dollars"] is not None
    legacy = _rows(db_url, f"SELECT * FROM markets WHERE ticker = '{mangled['legacy']}'")[0]
    assert legacy["yes_bid_dollars"] == Decimal("0")  # zero is a price, not a missing one
    assert legacy["yes_ask_dollars"] == Decimal("0.37")
    assert legacy["last_price_dollars"] == Decimal("0")


def _as_sim_request(request: httpx.Request):  # type: ignore[no-untyped-def]
    from ingestor.sim.httpmsg import HttpRequest

    return HttpRequest.build(request.method, request.url.raw_path.decode(), {})


async def test_lifecycle_messages_move_markets_before_the_next_discovery(
    sim: Sim, client: KalshiRestClient, rest_db: Database, db_url: str
) -> None:
    await discovery_pass(client, rest_db, CONFIG, now=sim_now(sim))
    active = [r["ticker"] for r in _rows(db_url, "SELECT ticker FROM active_markets ORDER BY 1")]
    settled, paused, moved = active[0], active[1], active[2]
    later = datetime.now(UTC) + timedelta(seconds=1)
    new_close = datetime(2030, 1, 1, tzinfo=UTC)
    with psycopg.connect(db_url) as conn:
        for i, (ticker, kind, extra) in enumerate(
            [
                (
                    settled,
                    "determined",
                    {"result": "yes", "settlement_value_dollars": Decimal("1")},
                ),
                (settled, "settled", {"settled_ts": later}),
                (paused, "deactivated", {"is_deactivated": True}),
                (moved, "close_date_updated", {"close_ts": new_close}),
                (moved, "deactivated", {"is_deactivated": True}),
                (moved, "activated", {"is_deactivated": False}),
            ]
        ):
            cols = [
                "msg_type",
                "event_type",
                "market_ticker",
                "ts",
                "received_at",
                "fingerprint",
                "raw",
                *extra,
            ]
            values = [
                "market_lifecycle_v2",
                kind,
                ticker,
                later,
                later + timedelta(0, 0, i),
                f"fp-{i}",
                json.dumps({"k": i}),
                *extra.values(),
            ]
            conn.execute(
                f"INSERT INTO lifecycle_events ({', '.join(cols)}) "
                f"VALUES ({', '.join(['%s'] * len(cols))})",
                values,
            )
    applier = LifecycleApplier(now=sim_now(sim))
    result = await applier.apply(rest_db)
    assert result.patched == 3
    rows = {r["ticker"]: r for r in _rows(db_url, "SELECT * FROM markets")}
    assert rows[settled]["status"] == "finalized"
    assert rows[settled]["result"] == "yes"
    assert rows[settled]["settlement_value_dollars"] == Decimal("1")
    assert rows[paused]["status"] == "inactive"
    assert rows[moved]["status"] == "active"
    assert rows[moved]["close_time"] == new_close
    active_rows = {r["ticker"]: r for r in _rows(db_url, "SELECT * FROM active_markets")}
    assert settled not in active_rows
    assert active_rows[paused]["status"] == "inactive"
    assert active_rows[moved]["close_time"] == new_close
    # re-reading the overlap changes nothing; a second applier (a restart) neither
    assert (await applier.apply(rest_db)).patched == 0
    assert (await LifecycleApplier(now=sim_now(sim)).apply(rest_db)).patched == 0


async def test_markets_join_the_active_set_at_their_open_time(
    sim: Sim, client: KalshiRestClient, rest_db: Database, db_url: str
) -> None:
    config = DiscoveryConfig.from_settings(rest_settings(DISCOVERY_EVENT_STATUSES="open,unopened"))
    await discovery_pass(client, rest_db, config, now=sim_now(sim))
    waiting = _rows(
        db_url, "SELECT ticker, open_time, close_time FROM markets WHERE status = 'initialized'"
    )
    assert waiting
    first = min(r["open_time"] for r in waiting)
    due = {r["ticker"] for r in waiting if r["open_time"] == first}
    applier = LifecycleApplier(now=lambda: first + timedelta(seconds=1))
    result = await applier.apply(rest_db)
    assert result.opened == len(due)
    active = {r["ticker"]: r for r in _rows(db_url, "SELECT * FROM active_markets")}
    assert due <= set(active)
    assert {active[t]["status"] for t in due} == {"active"}
    assert {active[t]["strike_period"] for t in due} <= {"hour", "day"}
    # once the exchange gets there, discovery agrees and keeps them
    sim.advance(first.timestamp() + 1 - sim.clock.now())
    await discovery_pass(client, rest_db, config, now=sim_now(sim))
    rows = _rows(db_url, "SELECT ticker, status FROM markets WHERE status = 'active'")
    assert due <= {r["ticker"] for r in rows}
    assert due <= {r["ticker"] for r in _rows(db_url, "SELECT ticker FROM active_markets")}
