"""The simulated exchange as a pure state model, driven by clock values handed to `advance_to`.

No I/O and no wall clock: the same seed, start time, tick density and sequence of clock values
always produce the same series, events, markets, ticks, trades and lifecycle messages.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
from bisect import bisect_right, insort
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ingestor.sim import candles as candle_rules
from ingestor.sim import prices, wire, world
from ingestor.sim.model import (
    ACTIVE,
    CLOSED,
    DETERMINED,
    FINALIZED,
    INACTIVE,
    INITIALIZED,
    Event,
    Market,
    Series,
    Tick,
    Trade,
    Transition,
)

log = logging.getLogger(__name__)

DAY = world.DAY
MAX_TICK_DENSITY = 1_000_000.0  # ticks per simulated second
_VARIANT = "89ab"


class UnknownMarketError(KeyError):
    """No market with that ticker exists in the simulator."""


class LifecycleMessage(NamedTuple):
    """A market_lifecycle_v2 channel message (type market_lifecycle_v2 or event_lifecycle)."""

    type: str
    msg: dict[str, Any]


Emission = Tick | LifecycleMessage


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """What shapes the simulated world; equal configs give identical worlds."""

    seed: int = 1
    markets: int = 20
    start_ts: int = 1_767_225_600  # 2026-01-01T00:00:00Z
    tick_density: float = 1.0  # live ticks per simulated second, over all active markets
    history_hours: float = 24.0  # live (post-cutoff) history generated before start_ts
    legacy: bool = False
    lifecycle_noise: bool = True  # random deactivations and close-date changes
    record_ticks: bool = True  # keep live ticks (candles, emitted_ticks); False: constant memory


class Exchange:
    """Series, events and markets with their lifecycle, prices, ticks, trades and candles."""

    def __init__(self, config: ExchangeConfig | None = None) -> None:
        self.config = config or ExchangeConfig()
        cfg = self.config
        if cfg.markets < 1:
            raise ValueError(f"markets={cfg.markets}: need at least one market")
        self.seed = cfg.seed
        self.legacy = cfg.legacy
        self._record = cfg.record_ticks
        self.start_ts = int(cfg.start_ts)
        history_start = self.start_ts - int(cfg.history_hours * 3600)
        self.cutoff_ts = history_start - history_start % 3600
        self.series: dict[str, Series] = {}
        self.events: dict[str, Event] = {}
        self.markets: dict[str, Market] = {}
        self.historical_markets: dict[str, Market] = {}
        self.emitted_ticks: list[Tick] = []
        self.lifecycle_messages: list[LifecycleMessage] = []
        self.transitions: list[Transition] = []
        self.trades: list[Trade] = []
        self._by_market_id: dict[str, str] = {}
        self._outbox: list[Emission] = []
        self._heap: list[tuple[int, int, str, str, int]] = []
        self._heap_seq = 0
        self._active: list[str] = []
        self._event_seq = 0
        self._market_seq = 0
        self._now_ms = self.start_ts * 1000
        self._tick_rng = random.Random(f"{cfg.seed}/ticks")
        self._tick_k = 0
        self._tick_origin_ms = self._now_ms + 1
        self._ms_per_tick = 0.0
        self.set_tick_density(cfg.tick_density)
        self._build(history_start)

    # ----------------------------------------------------------------- clock

    @property
    def now(self) -> float:
        """Current simulated time, Unix seconds."""
        return self._now_ms / 1000

    @property
    def now_ms(self) -> int:
        """Current simulated time, Unix milliseconds."""
        return self._now_ms

    @property
    def tick_density(self) -> float:
        """Live ticks per simulated second."""
        return 0.0 if self._ms_per_tick == 0 else 1000.0 / self._ms_per_tick

    def set_tick_density(self, per_second: float) -> None:
        """Change the live tick density (0 stops automatic ticks); applies from now on."""
        if per_second < 0 or per_second > MAX_TICK_DENSITY or math.isnan(per_second):
            raise ValueError(f"tick density {per_second}: must be in [0, {MAX_TICK_DENSITY}]")
        self._ms_per_tick = 0.0 if per_second == 0 else 1000.0 / per_second
        self._tick_origin_ms = self._now_ms + 1
        self._tick_k = 0

    def advance_to(self, t: float) -> None:
        """Move the clock to t (Unix s): run due lifecycle steps and ticks, in time order."""
        target = int(t * 1000)
        heap = self._heap
        while True:
            next_sched = heap[0][0] if heap else math.inf
            next_tick = self._next_tick_ms()
            if next_sched <= next_tick:
                if next_sched > target:
                    break
                due, _, kind, key, arg = heapq.heappop(heap)
                self._now_ms = max(self._now_ms, due)
                self._run(kind, key, arg)
            else:
                if next_tick > target:
                    break
                self._now_ms = max(self._now_ms, int(next_tick))
                self._tick_slot(int(next_tick), next_sched, target)
        self._now_ms = max(self._now_ms, target)

    def drain(self) -> list[Emission]:
        """Take the ticks and lifecycle messages produced since the last drain, in order."""
        out, self._outbox = self._outbox, []
        return out

    # ----------------------------------------------------------------- ticks

    def _next_tick_ms(self) -> float:
        if self._ms_per_tick == 0:
            return math.inf
        return self._tick_origin_ms + int(self._tick_k * self._ms_per_tick)

    def _tick_slot(self, slot: int, next_sched: float, target: int) -> None:
        """Emit the ticks that fall in one millisecond, on distinct active markets."""
        origin, per = self._tick_origin_ms, self._ms_per_tick
        if not self._active:
            resume = min(next_sched, target + 1)
            self._tick_k = max(self._tick_k + 1, math.ceil((resume - origin) / per))
            return
        count = 0
        while origin + int(self._tick_k * per) == slot:
            self._tick_k += 1
            count += 1
        rng = self._tick_rng
        chosen = rng.sample(self._active, min(count, len(self._active)))
        markets = self.markets
        for ticker in chosen:
            self._live_tick(markets[ticker], slot)

    def _make_tick(self, m: Market, ts_ms: int, rng: random.Random, record: bool) -> Tick:
        b = m.book
        traded = prices.step(b, rng, m.fractional)
        last = m.last_tick
        if last is not None and ts_ms <= last.ts_ms:
            ts_ms = last.ts_ms + 1
        trade = None
        if traded is not None:
            price, count_cc, side = traded
            trade = Trade(_uuid4(rng), m.ticker, ts_ms, price, count_cc, side)
        tick = Tick(m.ticker, m.market_id, ts_ms, b.yes_bid, b.yes_ask, b.bid_size_cc,
                    b.ask_size_cc, b.last_price, b.last_trade_cc, b.volume_cc, b.oi_cc,
                    b.notional, trade)
        m.last_tick = tick
        if record:
            m.ticks.append(tick)
            m.tick_ms.append(ts_ms)
            if trade is not None:
                m.trades.append(trade)
        return tick

    def _live_tick(self, m: Market, ts_ms: int) -> Tick:
        record = self._record
        tick = self._make_tick(m, ts_ms, self._tick_rng, record)
        if record:
            self.emitted_ticks.append(tick)
            if tick.trade is not None:
                self.trades.append(tick.trade)
        self._outbox.append(tick)
        return tick

    def emit_ticks(self, count: int, tickers: Sequence[str] | None = None) -> list[Tick]:
        """Produce `count` ticks now (scripted streams): on `tickers` in turn, else at random."""
        if count < 0:
            raise ValueError("count must be >= 0")
        if tickers:
            pool = [self.market(t) for t in tickers]
            for m in pool:
                if m.status != ACTIVE:
                    raise ValueError(f"{m.ticker} is {m.status}; only active markets tick")
            return [self._live_tick(pool[i % len(pool)], self._now_ms) for i in range(count)]
        if not self._active:
            raise ValueError("no active market to tick")
        rng = self._tick_rng
        return [
            self._live_tick(self.markets[rng.choice(self._active)], self._now_ms)
            for _ in range(count)
        ]

    # ----------------------------------------------------------------- queries

    def market(self, ticker: str) -> Market:
        """A live or historical market by ticker."""
        m = self.markets.get(ticker) or self.historical_markets.get(ticker)
        if m is None:
            raise UnknownMarketError(ticker)
        return m

    def ticker_for_id(self, market_id: str) -> str | None:
        """The ticker of a market UUID, if known."""
        return self._by_market_id.get(market_id)

    @property
    def active_tickers(self) -> list[str]:
        """Tickers of markets currently active (ticking), sorted."""
        return list(self._active)

    def ticks(self, ticker: str) -> list[Tick]:
        """Every tick of a market, history included, in time order."""
        return list(self.market(ticker).ticks)

    def candles(
        self,
        ticker: str,
        period_interval: int,
        start_ts: int,
        end_ts: int,
        *,
        include_latest_before_start: bool = False,
    ) -> list[dict[str, Any]]:
        """The candlesticks the endpoints return for this market and range (validated alike)."""
        candle_rules.check_request(period_interval, start_ts, end_ts)
        m = self.market(ticker)
        return candle_rules.build(
            m.ticks, m.tick_ms, period_interval, start_ts, end_ts, legacy=self.legacy,
            include_latest_before_start=include_latest_before_start,
        )

    def tick_at(self, m: Market, ts_ms: int) -> Tick | None:
        """The market's latest tick at or before ts_ms."""
        i = bisect_right(m.tick_ms, ts_ms)
        return m.ticks[i - 1] if i else None

    def market_json(self, m: Market) -> dict[str, Any]:
        """The REST Market object as of now."""
        return wire.market_json(m, self.tick_at(m, self._now_ms - DAY * 1000), self.legacy)

    def ticker_msg(self, tick: Tick) -> dict[str, Any]:
        """The WS ticker `msg` for a tick, in this exchange's payload shape."""
        return wire.ticker_msg(tick, self.legacy)

    def series_volume_cc(self, series_ticker: str) -> int:
        """Traded volume over the series' live and historical markets."""
        total = 0
        for group in (self.markets, self.historical_markets):
            for m in group.values():
                if m.series_ticker == series_ticker:
                    total += m.book.volume_cc
        return total

    # ----------------------------------------------------------------- lifecycle

    def _schedule(self, ts_ms: int, kind: str, key: str, arg: int = 0) -> None:
        self._heap_seq += 1
        heapq.heappush(self._heap, (ts_ms, self._heap_seq, kind, key, arg))

    def _set_status(self, m: Market, new: str) -> None:
        old = m.status
        m.status = new
        self.transitions.append(Transition(self._now_ms // 1000, m.ticker, old, new))
        if new == ACTIVE:
            insort(self._active, m.ticker)
        elif old == ACTIVE:
            i = bisect_right(self._active, m.ticker) - 1
            if i >= 0 and self._active[i] == m.ticker:
                del self._active[i]

    def _lifecycle(self, msg_type: str, msg: dict[str, Any]) -> None:
        lm = LifecycleMessage(msg_type, msg)
        self.lifecycle_messages.append(lm)
        self._outbox.append(lm)

    def _market_event(self, m: Market, event_type: str, **fields: Any) -> None:
        self._lifecycle(
            "market_lifecycle_v2", {"market_ticker": m.ticker, "event_type": event_type, **fields}
        )

    def _run(self, kind: str, key: str, arg: int) -> None:
        now = self._now_ms // 1000
        if kind == "create":
            self._create_next(self.series[key], arg)
            return
        m = self.markets[key]
        if kind == "open":
            if m.status == INITIALIZED:
                prices.open_book(m.book, world.market_rng(self.seed, m.ticker + "/book"))
                self._set_status(m, ACTIVE)
        elif kind == "close":
            if arg == m.close_version and m.status in (ACTIVE, INACTIVE, INITIALIZED):
                self._set_status(m, CLOSED)
                self._schedule((now + m.determine_delay_s) * 1000, "determine", m.ticker)
        elif kind == "determine":
            if m.status == CLOSED:
                m.result = m.outcome
                m.determination_ts = now
                self._set_status(m, DETERMINED)
                self._market_event(m, "determined", result=m.result, determination_ts=now,
                                   settlement_value="1.0000" if m.result == "yes" else "0.0000")
                self._schedule((now + m.settle_delay_s) * 1000, "settle", m.ticker)
        elif kind == "settle":
            if m.status == DETERMINED:
                m.settled_ts = now
                self._set_status(m, FINALIZED)
                self._market_event(m, "settled", settled_ts=now)
        elif kind == "deactivate":
            if m.status == ACTIVE:
                self._set_status(m, INACTIVE)
                self._market_event(m, "deactivated", is_deactivated=True)
                self._schedule((now + arg) * 1000, "activate", m.ticker)
        elif kind == "activate":
            if m.status == INACTIVE and now < m.close_ts:
                self._set_status(m, ACTIVE)
                self._market_event(m, "activated", is_deactivated=False)
        elif kind == "reclose" and m.status in (INITIALIZED, ACTIVE, INACTIVE) and arg > now:
            self.update_close_time(m.ticker, arg)

    def update_close_time(self, ticker: str, close_ts: int) -> None:
        """Move a not-yet-closed market's close time (emits close_date_updated)."""
        m = self.markets[ticker]
        if m.status not in (INITIALIZED, ACTIVE, INACTIVE):
            raise ValueError(f"{ticker} is {m.status}; its close time can no longer change")
        now = self._now_ms // 1000
        m.close_ts = close_ts
        m.expected_expiration_ts = close_ts + 300
        m.latest_expiration_ts = max(m.latest_expiration_ts, close_ts + world.WEEK)
        m.updated_ts = now
        m.close_version += 1
        self._market_event(m, "close_date_updated", close_ts=close_ts)
        self._schedule(max(close_ts, now) * 1000, "close", m.ticker, m.close_version)

    def deactivate(self, ticker: str, pause_s: int) -> None:
        """Pause an active market now; it reactivates after pause_s unless closed by then."""
        self._schedule(self._now_ms, "deactivate", ticker, pause_s)
        self.advance_to(self.now)

    # ----------------------------------------------------------------- world building

    def _status_at(self, m: Market, t: int) -> str:
        if t < m.open_ts:
            return INITIALIZED
        if t < m.close_ts:
            return ACTIVE
        det = m.close_ts + m.determine_delay_s
        if t < det:
            return CLOSED
        if t < det + m.settle_delay_s:
            return DETERMINED
        return FINALIZED

    def _build(self, history_start: int) -> None:
        start = self.start_ts
        pending: list[tuple[Event, list[Market], bool]] = []
        for spec, n in zip(world.CATALOG, world.allocate(self.config.markets), strict=True):
            s = world.make_series(spec, n, created_ts=self.cutoff_ts - 90 * DAY)
            self.series[s.ticker] = s
            if n == 0:
                continue
            if s.period_s is None:
                close = start - start % DAY + 20 * DAY + 18 * 3600
                open_ts = close - 30 * DAY
                ev = world.build_one_off_event(s, 0, close, open_ts - DAY)
                ms = world.build_markets(s, ev, self.seed, 0, open_ts, close)
                pending.append((ev, ms, False))
                continue
            p = s.period_s
            first_live = world.next_close(s, self.cutoff_ts)
            n_hist = 2 if p <= DAY else 1
            for k in range(n_hist + 1, 1, -1):
                close = first_live - k * p
                ev = world.build_event(s, self.seed, 0, close - p, close,
                                       close - p - world.creation_lead(s))
                ms = world.build_markets(s, ev, self.seed, 0, close - p, close)
                pending.append((ev, ms, True))
            close = first_live
            while True:
                created = close - p - world.creation_lead(s)
                if created > start:
                    self._schedule(created * 1000, "create", s.ticker, close)
                    break
                ev = world.build_event(s, self.seed, 0, close - p, close, created)
                ms = world.build_markets(s, ev, self.seed, 0, close - p, close)
                pending.append((ev, ms, False))
                close += p
        pending.sort(key=lambda x: (x[0].created_ts, x[0].event_ticker))
        for ev, ms, historical in pending:
            self._register(ev, ms, historical=historical, history_start=history_start)
        self.trades.sort(key=lambda tr: (tr.ts_ms, tr.trade_id))
        log.debug(
            "sim world built seed=%s series=%d events=%d markets=%d historical=%d active=%d",
            self.seed, len(self.series), len(self.events), len(self.markets),
            len(self.historical_markets), len(self._active),
        )

    def _register(
        self, ev: Event, ms: list[Market], *, historical: bool, history_start: int
    ) -> None:
        """Add an event and its markets as of now (construction or a scheduled listing)."""
        ev.seq = self._event_seq
        self._event_seq += 1
        self.events[ev.event_ticker] = ev
        now = self._now_ms // 1000
        for m in ms:
            m.seq = self._market_seq
            self._market_seq += 1
            ev.market_tickers.append(m.ticker)
            self._by_market_id[m.market_id] = m.ticker
            m.historical = historical
            lo = m.open_ts if historical else max(m.open_ts, history_start)
            if lo < min(m.close_ts, now):
                self._history(m, lo, min(m.close_ts, now))
            elif m.open_ts <= now < m.close_ts:
                prices.open_book(m.book, world.market_rng(self.seed, m.ticker + "/book"))
            status = self._status_at(m, now)
            if status in (DETERMINED, FINALIZED):
                m.result = m.outcome
                m.determination_ts = m.close_ts + m.determine_delay_s
            if status == FINALIZED:
                m.settled_ts = m.close_ts + m.determine_delay_s + m.settle_delay_s
            m.status = status
            if historical:
                self.historical_markets[m.ticker] = m
                continue
            self.markets[m.ticker] = m
            if status == ACTIVE:
                insort(self._active, m.ticker)
            self._plan(m, now)

    def _plan(self, m: Market, now: int) -> None:
        """Schedule a live market's remaining lifecycle steps (and its random disturbances)."""
        if m.status == INITIALIZED:
            self._schedule(m.open_ts * 1000, "open", m.ticker)
        if m.status in (INITIALIZED, ACTIVE):
            self._schedule(m.close_ts * 1000, "close", m.ticker, m.close_version)
        elif m.status == CLOSED:
            det = m.close_ts + m.determine_delay_s
            self._schedule(det * 1000, "determine", m.ticker)
        elif m.status == DETERMINED:
            assert m.determination_ts is not None
            self._schedule((m.determination_ts + m.settle_delay_s) * 1000, "settle", m.ticker)
        if not self.config.lifecycle_noise:
            return
        rng = world.market_rng(self.seed, m.ticker + "/noise")
        span = m.close_ts - m.open_ts
        deact_at = m.open_ts + int(span * (0.1 + 0.7 * rng.random()))
        pause = max(30, int(span * (0.02 + 0.1 * rng.random())))
        deact = rng.random() < 0.15
        reclose_at = m.open_ts + int(span * (0.1 + 0.6 * rng.random()))
        shift = int(span * (0.25 if rng.random() < 0.5 else -0.2)) // 60 * 60
        reclose = rng.random() < 0.1
        if deact and deact_at > now:
            self._schedule(deact_at * 1000, "deactivate", m.ticker, pause)
        if reclose and reclose_at > now and m.close_ts + shift > reclose_at + 60:
            self._schedule(reclose_at * 1000, "reclose", m.ticker, m.close_ts + shift)

    def _history(self, m: Market, lo: int, hi: int) -> None:
        """Ticks for a market's past activity, from its own random stream."""
        rng = world.market_rng(self.seed, m.ticker + "/history")
        prices.open_book(m.book, rng)
        period = self.series[m.series_ticker].period_s or 30 * DAY
        mean_gap = min(max(period / 60, 60.0), 3600.0)
        t = lo + rng.expovariate(1.0 / mean_gap)
        while t < hi:
            tick = self._make_tick(m, int(t * 1000), rng, True)
            if tick.trade is not None:
                self.trades.append(tick.trade)
            t += rng.expovariate(1.0 / mean_gap)

    def _create_next(self, s: Series, close: int) -> None:
        """List the next event of a periodic series and schedule the one after."""
        assert s.period_s is not None
        p = s.period_s
        now = self._now_ms // 1000
        ev = world.build_event(s, self.seed, 0, close - p, close, now)
        ms = world.build_markets(s, ev, self.seed, 0, close - p, close)
        self._register(ev, ms, historical=False, history_start=now)
        self._lifecycle("event_lifecycle", wire.lifecycle_event(ev))
        for m in ms:
            self._market_event(m, "created", **_created_fields(m, ev))
            self.transitions.append(Transition(now, m.ticker, "", m.status))
        nxt = close + p
        self._schedule((nxt - p - world.creation_lead(s)) * 1000, "create", s.ticker, nxt)


def _uuid4(rng: random.Random) -> str:
    """A version-4 UUID string drawn from `rng` (deterministic, unlike uuid.uuid4)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _created_fields(m: Market, ev: Event) -> dict[str, Any]:
    msg = wire.lifecycle_created(m, ev)
    del msg["market_ticker"], msg["event_type"]
    return msg
