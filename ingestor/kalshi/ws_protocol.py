"""Kalshi WS protocol: command building, reply and data-frame parsing. Pure, no sockets."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ingestor.kalshi.errors import TERMINAL_WS_CODES, KalshiWSError, ws_error
from ingestor.kalshi.models import (
    EPOCH,
    EventFeeUpdateMessage,
    EventLifecycleMessage,
    MarketLifecycleMessage,
    TradeMessage,
    ws_time,
)

log = logging.getLogger(__name__)

TICKER = "ticker"
TRADE = "trade"
MARKET_LIFECYCLE = "market_lifecycle_v2"
EVENT_LIFECYCLE = "event_lifecycle"
EVENT_FEE_UPDATE = "event_fee_update"

UPDATE_ACTIONS = ("add_markets", "delete_markets", "get_snapshot")
UpdateAction = Literal["add_markets", "delete_markets", "get_snapshot"]


# ---- commands -----------------------------------------------------------------------------


class WSCommand(BaseModel):
    """Client command envelope `{"id", "cmd", "params"}`."""

    model_config = ConfigDict(frozen=True)

    id: int
    cmd: str
    params: dict[str, Any] | None = None

    def to_json(self) -> str:
        """The text frame to send."""
        body: dict[str, Any] = {"id": self.id, "cmd": self.cmd}
        if self.params is not None:
            body["params"] = self.params
        return json.dumps(body, separators=(",", ":"))


class CommandBuilder:
    """Builds commands with ids counting up from 1, unique within one WS session."""

    def __init__(self, first_id: int = 1) -> None:
        if first_id < 1:
            raise ValueError("command ids start at 1 (0 means 'no id')")
        self._next = first_id

    def _make(self, cmd: str, params: dict[str, Any] | None) -> WSCommand:
        command = WSCommand(id=self._next, cmd=cmd, params=params)
        self._next += 1
        return command

    def subscribe(
        self,
        channels: Iterable[str],
        market_tickers: Iterable[str] | None = None,
        *,
        send_initial_snapshot: bool | None = None,
        skip_ticker_ack: bool | None = None,
    ) -> WSCommand:
        """`subscribe`; without market_tickers a ticker subscription covers every market."""
        chans = list(channels)
        if not chans:
            raise ValueError("subscribe needs at least one channel")
        params: dict[str, Any] = {"channels": chans}
        if market_tickers is not None:
            tickers = list(market_tickers)
            if not tickers:
                raise ValueError("market_tickers given but empty (omit it to mean all markets)")
            params["market_tickers"] = tickers
        if send_initial_snapshot is not None:
            params["send_initial_snapshot"] = send_initial_snapshot
        if skip_ticker_ack is not None:
            params["skip_ticker_ack"] = skip_ticker_ack
        return self._make("subscribe", params)

    def update_subscription(
        self,
        sid: int,
        action: UpdateAction,
        market_tickers: Iterable[str],
        *,
        send_initial_snapshot: bool | None = None,
    ) -> WSCommand:
        """`update_subscription` on exactly one sid."""
        if action not in UPDATE_ACTIONS:
            raise ValueError(f"unsupported action {action!r}")
        tickers = list(market_tickers)
        if not tickers and action != "get_snapshot":
            raise ValueError(f"{action} needs at least one market ticker")
        params: dict[str, Any] = {"sids": [sid], "market_tickers": tickers, "action": action}
        if send_initial_snapshot is not None:
            params["send_initial_snapshot"] = send_initial_snapshot
        return self._make("update_subscription", params)

    def unsubscribe(self, sids: Iterable[int]) -> WSCommand:
        """`unsubscribe` from the given sids."""
        sid_list = list(sids)
        if not sid_list:
            raise ValueError("unsubscribe needs at least one sid")
        return self._make("unsubscribe", {"sids": sid_list})

    def list_subscriptions(self) -> WSCommand:
        """`list_subscriptions`."""
        return self._make("list_subscriptions", {})


# ---- replies ------------------------------------------------------------------------------


class Reply(BaseModel):
    """Base of server replies to commands."""

    model_config = ConfigDict(extra="allow")

    id: int | None = None


class SubscribedReply(Reply):
    """`subscribed`: one per channel of a subscribe."""

    sid: int
    channel: str | None = None


class UnsubscribedReply(Reply):
    """`unsubscribed`."""

    sid: int | None = None
    seq: int | None = None


class SubscriptionInfo(BaseModel):
    """One entry of a list_subscriptions reply."""

    model_config = ConfigDict(extra="allow")

    channel: str | None = None
    sid: int


class OkReply(Reply):
    """`ok`: update_subscription (market list after the update) or list_subscriptions."""

    sid: int | None = None
    seq: int | None = None
    market_tickers: list[str] | None = None
    subscriptions: list[SubscriptionInfo] | None = None
    msg: Any = None


class ErrorReply(Reply):
    """`error`: a numbered error, for a command (id) or unsolicited (id 0 or absent)."""

    code: int
    message: str | None = None
    sid: int | None = None
    market_ticker: str | None = None

    @property
    def terminal(self) -> bool:
        return self.code in TERMINAL_WS_CODES

    def to_exception(self) -> KalshiWSError:
        """The named exception for this error code."""
        return ws_error(
            self.code,
            self.message,
            command_id=self.id or None,
            sid=self.sid,
            market_ticker=self.market_ticker,
        )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_reply(frame: Mapping[str, Any]) -> Reply | None:
    """Parse a reply frame (subscribed/unsubscribed/ok/error); None when it is not a reply."""
    kind = frame.get("type")
    msg = frame.get("msg")
    if kind == "subscribed":
        body = msg if isinstance(msg, Mapping) else {}
        return SubscribedReply.model_validate(
            {
                "id": frame.get("id"),
                "sid": body.get("sid", frame.get("sid")),
                "channel": body.get("channel"),
            }
        )
    if kind == "unsubscribed":
        return UnsubscribedReply.model_validate(
            {"id": frame.get("id"), "sid": frame.get("sid"), "seq": frame.get("seq")}
        )
    if kind == "ok":
        data: dict[str, Any] = {
            "id": frame.get("id"),
            "sid": frame.get("sid"),
            "seq": frame.get("seq"),
            "msg": msg,
        }
        if isinstance(msg, list):
            data["subscriptions"] = [m for m in msg if isinstance(m, Mapping) and "sid" in m]
        elif isinstance(msg, Mapping):
            tickers = msg.get("market_tickers")
            if isinstance(tickers, list):
                data["market_tickers"] = tickers
            subs = msg.get("subscriptions")
            if isinstance(subs, list):
                data["subscriptions"] = [m for m in subs if isinstance(m, Mapping) and "sid" in m]
        return OkReply.model_validate(data)
    if kind == "error":
        body = msg if isinstance(msg, Mapping) else {}
        return ErrorReply.model_validate(
            {
                "id": frame.get("id"),
                "code": body.get("code"),
                "message": body.get("msg", body.get("message")),
                "sid": _int_or_none(body.get("sid", frame.get("sid"))),
                "market_ticker": body.get("market_ticker"),
            }
        )
    return None


# ---- data frames --------------------------------------------------------------------------


@dataclass(slots=True)
class Ticker:
    """A `ticker` payload, built without pydantic for speed; same fields as TickerMessage."""

    market_ticker: str
    market_id: str | None
    price_dollars: Decimal | None
    yes_bid_dollars: Decimal | None
    yes_ask_dollars: Decimal | None
    no_bid_dollars: Decimal | None
    yes_bid_size_fp: Decimal | None
    yes_ask_size_fp: Decimal | None
    last_trade_size_fp: Decimal | None
    volume_fp: Decimal | None
    open_interest_fp: Decimal | None
    dollar_volume: int | None
    dollar_open_interest: int | None
    ts: datetime | None
    ts_ms: int | None


Payload = (
    Ticker | TradeMessage | MarketLifecycleMessage | EventLifecycleMessage | EventFeeUpdateMessage
)


@dataclass(slots=True)
class DataMessage:
    """A data frame: message `type`, subscription `sid`, `seq` (orderbook only), parsed `body`.

    `body` is None for message types this client does not model; `raw` is the `msg` object as
    received, for storage.
    """

    type: str
    sid: int | None
    seq: int | None
    body: Payload | None
    raw: dict[str, Any]


Message = DataMessage | Reply


class MalformedFrame(ValueError):
    """A frame that is not valid JSON, not an object, or whose payload does not validate."""


@dataclass
class WSStats:
    """Counters of one WS client (or one parser): frames in, malformed, unknown, errors."""

    frames: int = 0
    malformed: int = 0
    unknown_type: int = 0
    duplicates: int = 0
    reconnects: int = 0
    messages_by_type: Counter[str] = field(default_factory=Counter)
    errors_by_code: Counter[int] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        """A plain dict for logging and health output."""
        return {
            "frames": self.frames,
            "malformed": self.malformed,
            "unknown_type": self.unknown_type,
            "duplicates": self.duplicates,
            "reconnects": self.reconnects,
            "messages_by_type": dict(self.messages_by_type),
            "errors_by_code": dict(self.errors_by_code),
        }


_D = Decimal
_STR = str


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    if type(value) is _STR:
        if not value:
            return None
        result = _D(value)
    elif type(value) is int:
        result = _D(value)
    elif type(value) is float:
        result = _D(repr(value))
    else:
        raise MalformedFrame(f"expected a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise MalformedFrame(f"not a finite number: {value!r}")
    return result


def _cents(value: Any) -> Decimal | None:
    result = _dec(value)
    return None if result is None else result.scaleb(-2)


def _opt_int(value: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    raise MalformedFrame(f"expected an integer, got {type(value).__name__}")


def _opt_str(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise MalformedFrame(f"expected a string, got {type(value).__name__}")


def _pick(m: dict[str, Any], new: str, legacy: str, convert: Any) -> Decimal | None:
    value = m.get(new)
    if value is not None:
        return _dec(value)
    old = m.get(legacy)
    return None if old is None else convert(old)


def parse_ticker(m: dict[str, Any]) -> Ticker:
    """Build a Ticker from a `msg` dict (new fields first, legacy ints as fallback)."""
    market_ticker = m.get("market_ticker")
    if type(market_ticker) is not str or not market_ticker:
        raise MalformedFrame("ticker without market_ticker")
    get = m.get
    try:
        ts_ms = get("ts_ms")
        if type(ts_ms) is int:
            ts: datetime | None = EPOCH + timedelta(milliseconds=ts_ms)
        else:
            ts_ms = None
            ts = ws_time(m)
        return Ticker(
            market_ticker,
            _opt_str(get("market_id")),
            _pick(m, "price_dollars", "price", _cents),
            _pick(m, "yes_bid_dollars", "yes_bid", _cents),
            _pick(m, "yes_ask_dollars", "yes_ask", _cents),
            _pick(m, "no_bid_dollars", "no_bid", _cents),
            _dec(get("yes_bid_size_fp")),
            _dec(get("yes_ask_size_fp")),
            _dec(get("last_trade_size_fp")),
            _pick(m, "volume_fp", "volume", _dec),
            _pick(m, "open_interest_fp", "open_interest", _dec),
            _opt_int(get("dollar_volume")),
            _opt_int(get("dollar_open_interest")),
            ts,
            ts_ms,
        )
    except (InvalidOperation, OverflowError, ValueError) as exc:
        if isinstance(exc, MalformedFrame):
            raise
        raise MalformedFrame(f"bad ticker field: {exc!r}") from None


_MODELS: dict[str, Any] = {
    TRADE: TradeMessage,
    MARKET_LIFECYCLE: MarketLifecycleMessage,
    "multivariate_market_lifecycle": MarketLifecycleMessage,
    EVENT_LIFECYCLE: EventLifecycleMessage,
    EVENT_FEE_UPDATE: EventFeeUpdateMessage,
}
_REPLY_TYPES = frozenset({"subscribed", "unsubscribed", "ok", "error"})

_LOG_FIRST = 10
_LOG_EVERY = 1000


def shorten(text: str, limit: int = 200) -> str:
    """A frame cut to `limit` characters for logs."""
    return text if len(text) <= limit else f"{text[:limit]}...(+{len(text) - limit} chars)"


def _note_malformed(stats: WSStats, text: str, why: str) -> None:
    stats.malformed += 1
    n = stats.malformed
    if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
        log.warning("ws malformed frame count=%d reason=%s frame=%r", n, why, shorten(text))


def _note_unknown(stats: WSStats, kind: str, text: str) -> None:
    stats.unknown_type += 1
    n = stats.unknown_type
    if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
        log.info("ws unknown message type=%s count=%d frame=%r", kind, n, shorten(text))


_default_stats = WSStats()


def decode_frame(text: str | bytes) -> Message:
    """Parse one frame or raise MalformedFrame (no counting)."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedFrame(f"not JSON: {exc}") from None
    if type(frame) is not dict:
        raise MalformedFrame("not a JSON object")
    kind = frame.get("type")
    if type(kind) is not str:
        raise MalformedFrame("no message type")
    if kind in _REPLY_TYPES:
        try:
            reply = parse_reply(frame)
        except ValidationError as exc:
            raise MalformedFrame(f"bad {kind} reply: {_first_error(exc)}") from None
        assert reply is not None
        return reply
    msg = frame.get("msg")
    if type(msg) is not dict:
        raise MalformedFrame(f"{kind} frame without msg object")
    sid = frame.get("sid")
    seq = frame.get("seq")
    if (sid is not None and type(sid) is not int) or (seq is not None and type(seq) is not int):
        raise MalformedFrame("sid/seq not integers")
    if kind == TICKER:
        return DataMessage(kind, sid, seq, parse_ticker(msg), msg)
    model = _MODELS.get(kind)
    if model is None:
        return DataMessage(kind, sid, seq, None, msg)
    try:
        body = model.model_validate(msg)
    except ValidationError as exc:
        raise MalformedFrame(f"bad {kind}: {_first_error(exc)}") from None
    return DataMessage(kind, sid, seq, body, msg)


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return f"{loc}: {first.get('msg')}"


def parse_frame(text: str | bytes, stats: WSStats | None = None) -> Message | None:
    """Parse one text frame; malformed frames are counted, logged (shortened) and give None."""
    st = _default_stats if stats is None else stats
    st.frames += 1
    try:
        message = decode_frame(text)
    except MalformedFrame as exc:
        raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
        _note_malformed(st, raw, str(exc))
        return None
    if type(message) is DataMessage:
        st.messages_by_type[message.type] += 1
        if message.body is None:
            raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
            _note_unknown(st, message.type, raw)
    elif isinstance(message, ErrorReply):
        st.errors_by_code[message.code] += 1
    return message
