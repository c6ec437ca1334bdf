"""WS command handling for one connection: subscriptions and replies, without any I/O."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from ingestor.sim.exchange import Exchange
from ingestor.sim.wire import dumps

log = logging.getLogger(__name__)

TICKER = "ticker"
TRADE = "trade"
LIFECYCLE = "market_lifecycle_v2"
CHANNELS = (TICKER, TRADE, LIFECYCLE)
MARKET_CHANNELS = (TICKER, TRADE)

ERROR_TEXT = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    6: "Already subscribed",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    9: "Authentication required",
    10: "Channel error",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    17: "Internal error",
    18: "Command timeout",
    25: "Subscription buffer overflow",
    26: "Subscription market limit exceeded",
    27: "Too many requests",
}


@dataclass(slots=True, eq=False)
class Subscription:
    """One sid: a channel and its market filter (None = every market)."""

    sid: int
    channel: str
    markets: set[str] | None
    skip_ticker_ack: bool = False
    seq: int = 0

    def next_seq(self) -> int:
        """The seq for the next reply on this sid."""
        self.seq += 1
        return self.seq


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A read-only snapshot of a subscription, for assertions."""

    channel: str
    sid: int
    markets: frozenset[str] | None


class CommandError(Exception):
    """A command refused with a Kalshi WS error code."""

    def __init__(self, code: int, **extra: Any) -> None:
        super().__init__(ERROR_TEXT.get(code, "error"))
        self.code = code
        self.extra = extra


def error_frame(cmd_id: Any, code: int, **extra: Any) -> str:
    """An error reply: {"id", "type": "error", "msg": {"code", "msg", ...}}."""
    msg: dict[str, Any] = {"code": code, "msg": ERROR_TEXT.get(code, "error"), **extra}
    return dumps({"id": cmd_id, "type": "error", "msg": msg})


def subscription_error_frame(sub: Subscription, code: int) -> str:
    """An unsolicited error that ends a subscription (e.g. 25 buffer overflow)."""
    msg = {"code": code, "msg": ERROR_TEXT.get(code, "error"), "sid": sub.sid}
    return dumps({"id": 0, "type": "error", "sid": sub.sid, "msg": msg})


class Session:
    """The subscriptions of one WS connection and the replies to its commands."""

    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange
        self.subs: dict[int, Subscription] = {}
        self.by_channel: dict[str, list[Subscription]] = {c: [] for c in CHANNELS}
        self._next_sid = 1

    def views(self) -> list[SubscriptionView]:
        """Current subscriptions, in sid order."""
        return [
            SubscriptionView(s.channel, s.sid, None if s.markets is None else frozenset(s.markets))
            for s in sorted(self.subs.values(), key=lambda s: s.sid)
        ]

    def remove(self, sid: int) -> Subscription | None:
        """Drop a subscription server-side."""
        sub = self.subs.pop(sid, None)
        if sub is not None:
            self.by_channel[sub.channel].remove(sub)
        return sub

    def handle(self, text: str) -> list[str]:
        """Frames to send in answer to one client text message."""
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            return [error_frame(0, 1)]
        if not isinstance(msg, dict):
            return [error_frame(0, 1)]
        cmd_id = msg.get("id", 0)
        if isinstance(cmd_id, bool) or not isinstance(cmd_id, int):
            return [error_frame(0, 1)]
        cmd = msg.get("cmd")
        params = msg.get("params")
        handlers = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "update_subscription": self._update,
            "list_subscriptions": self._list,
        }
        handler = handlers.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            return [error_frame(cmd_id, 5)]
        if cmd != "list_subscriptions" and not isinstance(params, dict):
            return [error_frame(cmd_id, 2)]
        try:
            return handler(cmd_id, params if isinstance(params, dict) else {})
        except CommandError as exc:
            return [error_frame(cmd_id, exc.code, **exc.extra)]

    # ------------------------------------------------------------------ params

    def _tickers(self, params: dict[str, Any]) -> list[str] | None:
        """market_ticker(s) or market_id(s) as tickers; None when none were given."""
        out: list[str] = []
        given = False
        for key, many in (("market_ticker", False), ("market_tickers", True)):
            if key in params:
                given = True
                out.extend(_str_list(params[key], many))
        for key, many in (("market_id", False), ("market_ids", True)):
            if key in params:
                given = True
                for mid in _str_list(params[key], many):
                    ticker = self.ex.ticker_for_id(mid)
                    if ticker is None:
                        raise CommandError(16, market_id=mid)
                    out.append(ticker)
        if not given:
            return None
        for t in out:
            if t not in self.ex.markets and t not in self.ex.historical_markets:
                raise CommandError(16, market_ticker=t)
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ commands

    def _subscribe(self, cmd_id: Any, params: dict[str, Any]) -> list[str]:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            raise CommandError(3)
        for ch in channels:
            if ch not in CHANNELS:
                raise CommandError(8, channel=ch if isinstance(ch, str) else None)
        tickers = self._tickers(params)
        skip_ack = bool(params.get("skip_ticker_ack", False))
        snapshot = bool(params.get("send_initial_snapshot", False))
        frames: list[str] = []
        for ch in dict.fromkeys(channels):
            markets = set(tickers) if tickers is not None and ch in MARKET_CHANNELS else None
            existing = self.by_channel[ch]
            if existing:
                if markets is None or any(s.markets is None for s in existing):
                    frames.append(error_frame(cmd_id, 6, channel=ch))
                    continue
                taken = set().union(*(s.markets or set() for s in existing)) & markets
                if taken:
                    frames.append(error_frame(cmd_id, 6, channel=ch, market_ticker=min(taken)))
                    continue
            sub = Subscription(self._next_sid, ch, markets, skip_ack)
            self._next_sid += 1
            self.subs[sub.sid] = sub
            existing.append(sub)
            frames.append(dumps({"id": cmd_id, "type": "subscribed",
                                 "msg": {"channel": ch, "sid": sub.sid}}))
            if snapshot and ch == TICKER and markets:
                frames.extend(self._snapshot(sub, sorted(markets)))
        return frames

    def _snapshot(self, sub: Subscription, tickers: list[str]) -> list[str]:
        out = []
        for t in tickers:
            m = self.ex.markets.get(t)
            if m is not None and m.last_tick is not None:
                body = dumps(self.ex.ticker_msg(m.last_tick))
                out.append(f'{{"type":"ticker","sid":{sub.sid},"msg":{body}}}')
        return out

    def _one_sid(self, params: dict[str, Any]) -> Subscription:
        if "sid" in params:
            sids = [params["sid"]]
        elif "sids" in params:
            sids = params["sids"]
            if not isinstance(sids, list):
                raise CommandError(11)
        else:
            raise CommandError(4)
        if len(sids) != 1:
            raise CommandError(12)
        sid = sids[0]
        sub = self.subs.get(sid) if isinstance(sid, int) else None
        if sub is None:
            raise CommandError(7, sid=sid)
        return sub

    def _update(self, cmd_id: Any, params: dict[str, Any]) -> list[str]:
        sub = self._one_sid(params)
        action = params.get("action")
        if action is None:
            raise CommandError(15)
        if action not in ("add_markets", "delete_markets"):
            raise CommandError(13)
        if sub.channel not in MARKET_CHANNELS or sub.markets is None:
            raise CommandError(11, sid=sub.sid)
        tickers = self._tickers(params)
        if not tickers:
            raise CommandError(14)
        frames: list[str] = []
        if action == "add_markets":
            added = [t for t in tickers if t not in sub.markets]
            sub.markets.update(tickers)
            if params.get("send_initial_snapshot") and sub.channel == TICKER:
                frames.extend(self._snapshot(sub, added))
        else:
            sub.markets.difference_update(tickers)
        msg: dict[str, Any] = {} if sub.skip_ticker_ack else {"market_tickers": sorted(sub.markets)}
        frames.insert(0, dumps({"id": cmd_id, "sid": sub.sid, "seq": sub.next_seq(),
                                "type": "ok", "msg": msg}))
        return frames

    def _unsubscribe(self, cmd_id: Any, params: dict[str, Any]) -> list[str]:
        sids = params.get("sids")
        if not isinstance(sids, list) or not sids:
            raise CommandError(4)
        frames = []
        for sid in sids:
            sub = self.remove(sid) if isinstance(sid, int) else None
            if sub is None:
                frames.append(error_frame(cmd_id, 7, sid=sid))
                continue
            frames.append(dumps({"id": cmd_id, "sid": sub.sid, "seq": sub.next_seq(),
                                 "type": "unsubscribed"}))
        return frames

    def _list(self, cmd_id: Any, params: dict[str, Any]) -> list[str]:
        subs = [{"channel": v.channel, "sid": v.sid} for v in self.views()]
        return [dumps({"id": cmd_id, "type": "ok", "msg": subs})]


def _str_list(value: Any, many: bool) -> list[str]:
    if many:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CommandError(11)
        return value
    if not isinstance(value, str):
        raise CommandError(11)
    return [value]
