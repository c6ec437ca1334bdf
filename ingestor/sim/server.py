"""The running simulator: one port for REST and WS, the clock driver, faults, and `open_sim`."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from ingestor.kalshi.signing import generate_key_pair, parse_public_key
from ingestor.sim.auth import Authenticator
from ingestor.sim.clock import SimClock
from ingestor.sim.exchange import Exchange, ExchangeConfig
from ingestor.sim.faults import Faults, FaultSpec, parse_fault
from ingestor.sim.http_server import serve_connection
from ingestor.sim.httpmsg import TOO_MANY_REQUESTS, HttpRequest, HttpResponse, error_body
from ingestor.sim.hub import DEFAULT_BUFFER_LIMIT, Hub
from ingestor.sim.model import Tick
from ingestor.sim.ratelimit import TokenBucket
from ingestor.sim.rest_app import PREFIX, RestApp
from ingestor.sim.ws_conn import WsConn
from ingestor.sim.ws_protocol import Session, SubscriptionView

log = logging.getLogger(__name__)

WS_PATH = "/trade-api/ws/v2"
DEFAULT_TICK_RATE = 20.0
PRIVATE_KEY_FILE = "sim-private-key.pem"


def _fault_response(status: int) -> HttpResponse:
    if status == 429:
        return TOO_MANY_REQUESTS
    code = "service_unavailable" if status == 503 else "internal_server_error"
    if status < 500:
        code = "injected_error"
    return HttpResponse.json(status, error_body(code, f"injected fault: HTTP {status}"))


class Sim:
    """A simulated Kalshi exchange serving REST and WS on one loopback port."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        clock_speed: float,
        manual_clock: bool = False,
        authenticator: Authenticator,
        rate: float = 20.0,
        burst: int = 40,
        tick_rate: float = DEFAULT_TICK_RATE,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float = 10.0,
        ws_buffer_limit: int = DEFAULT_BUFFER_LIMIT,
        step_interval: float = 0.01,
        fault_specs: Sequence[FaultSpec] = (),
        private_key_path: Path | None = None,
        public_key_pem: bytes = b"",
    ) -> None:
        self.exchange = exchange
        self.clock = SimClock(exchange.start_ts, clock_speed, manual=manual_clock)
        self.authenticator = authenticator
        self.key_id = authenticator.key_id
        self.private_key_path = private_key_path
        self.public_key_pem = public_key_pem
        self.bucket = TokenBucket(rate, burst, trio.current_time)
        self.faults = Faults()
        self.hub = Hub(exchange, self.faults, ws_buffer_limit)
        self.rest = RestApp(exchange)
        self.host = host
        self.port = port
        self.ping_interval = ping_interval
        self.step_interval = step_interval
        self.fault_specs = list(fault_specs)
        self.status_counts: Counter[int] = Counter()
        self.auth_failures: Counter[str] = Counter()
        self._conn_ids = 0
        self.exchange.set_tick_density(tick_rate / clock_speed)

    # ------------------------------------------------------------------ URLs

    @property
    def rest_url(self) -> str:
        """Base URL for REST, e.g. http://127.0.0.1:PORT/trade-api/v2."""
        return f"http://{self.host}:{self.port}{PREFIX}"

    @property
    def ws_url(self) -> str:
        """WebSocket URL, e.g. ws://127.0.0.1:PORT/trade-api/ws/v2."""
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    # ------------------------------------------------------------------ test controls

    def step(self) -> None:
        """Bring the exchange to the clock's time and deliver what it produced."""
        self.exchange.advance_to(self.clock.now())
        self.flush()

    def flush(self) -> None:
        """Deliver produced ticks and lifecycle messages to WS subscribers now."""
        items = self.exchange.drain()
        if items:
            self.hub.dispatch(items)

    def advance(self, seconds: float) -> None:
        """Jump the simulated clock forward (lifecycle steps and ticks in between run)."""
        self.clock.skip(seconds)
        self.step()

    def emit_ticks(self, count: int, tickers: Sequence[str] | None = None) -> list[Tick]:
        """Produce `count` ticks now and send them to subscribers; returns what was sent."""
        self.step()
        ticks = self.exchange.emit_ticks(count, tickers)
        self.flush()
        return ticks

    def set_tick_rate(self, ticks_per_second: float) -> None:
        """Automatic ticks per real second (0 stops them; scripted ticks still work)."""
        self.step()
        self.exchange.set_tick_density(ticks_per_second / self.clock.speed)

    def subscriptions(self) -> dict[int, list[SubscriptionView]]:
        """Server-side subscriptions per open WS connection id."""
        return self.hub.subscriptions()

    @property
    def ws_connection_count(self) -> int:
        """Open WS connections."""
        return len(self.hub.subscriptions())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until predicate() is true (polling); raises trio.TooSlowError after timeout."""
        with trio.fail_after(timeout):
            while not predicate():
                await trio.sleep(0.005)

    # ------------------------------------------------------------------ HTTP application

    async def http(self, req: HttpRequest) -> HttpResponse:
        """REST pipeline: injected faults, rate limit, optional auth, then the handler."""
        try:
            resp = await self._http(req)
        except Exception:
            log.exception("rest handler failed method=%s path=%s", req.method, req.path)
            resp = HttpResponse.json(500, error_body("internal_error", "simulator error"))
        self.status_counts[resp.status] += 1
        log.debug("http method=%s path=%s status=%d", req.method, req.path, resp.status)
        return resp

    async def _http(self, req: HttpRequest) -> HttpResponse:
        if req.path == WS_PATH:
            return HttpResponse.json(400, error_body("bad_request", "websocket upgrade required"))
        fault = self.faults.take_http()
        if fault is not None:
            status, delay = fault
            if delay > 0:
                await trio.sleep(delay)
            if status is not None:
                return _fault_response(status)
        if not self.bucket.take():
            return TOO_MANY_REQUESTS
        if Authenticator.has_credentials(req.headers):
            failure = self.authenticator.check(req.headers, req.method, req.raw_path)
            if failure is not None:
                self.auth_failures[failure.reason] += 1
                return failure.response
        self.step()
        return self.rest.handle(req)

    def websocket_refusal(self, req: HttpRequest) -> HttpResponse | None:
        """Refuse upgrades to other paths and any handshake without a valid signature."""
        if req.path != WS_PATH:
            return HttpResponse.json(404, error_body("not_found", f"no websocket at {req.path}"))
        failure = self.authenticator.check(req.headers, "GET", req.raw_path)
        if failure is not None:
            self.auth_failures[failure.reason] += 1
            return failure.response
        return None

    async def websocket(self, stream: trio.abc.Stream, trailing: bytes, req: HttpRequest) -> None:
        """Serve one accepted WS connection."""
        self._conn_ids += 1
        conn = WsConn(self._conn_ids, stream, Session(self.exchange), trailing=trailing,
                      ping_interval=self.ping_interval)
        self.hub.add(conn)
        log.info("ws connected conn=%d client=%s", conn.conn_id, req.client)
        try:
            await conn.run()
        finally:
            self.hub.discard(conn)
            log.info("ws closed conn=%d frames=%d", conn.conn_id, conn.frames_sent)

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            await serve_connection(self, stream)
        except Exception:
            log.exception("connection handler failed")

    # ------------------------------------------------------------------ running

    async def serve(self, *, task_status: trio.TaskStatus[Sim] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, drive the clock and scheduled faults until cancelled."""
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, self._handle, self.port, host=self.host)
            )
            self.port = listeners[0].socket.getsockname()[1]
            self.clock.start()
            nursery.start_soon(self._drive)
            for spec in self.fault_specs:
                if spec.every is None:
                    spec.apply(self.faults)
                else:
                    nursery.start_soon(self._fault_loop, spec)
            log.info("sim listening rest=%s ws=%s", self.rest_url, self.ws_url)
            task_status.started(self)

    async def _drive(self) -> None:
        while True:
            self.step()
            await trio.sleep(self.step_interval)

    async def _fault_loop(self, spec: FaultSpec) -> None:
        assert spec.every is not None
        while True:
            await trio.sleep(spec.every)
            spec.apply(self.faults)


def _write_private_key(directory: Path, pem: bytes) -> Path:
    path = directory / PRIVATE_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)
    return path


@asynccontextmanager
async def open_sim(
    seed: int = 1,
    markets: int = 20,
    speed: float = 60.0,
    rate: float = 20.0,
    burst: int = 40,
    legacy: bool = False,
    public_key_pem: bytes | str | None = None,
    tick_rate: float | None = None,
    *,
    key_id: str | None = None,
    key_dir: str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    start_ts: int | None = None,
    manual_clock: bool = False,
    history_hours: float = 24.0,
    lifecycle_noise: bool = True,
    record_ticks: bool = True,
    lenient_salt: bool = False,
    max_age_s: float = 30.0,
    max_future_s: float = 60.0,
    ping_interval: float = 10.0,
    ws_buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    step_interval: float = 0.01,
    faults: Sequence[FaultSpec | str] = (),
) -> AsyncIterator[Sim]:
    """Run a simulator on `host:port` (port 0: ephemeral) in a background nursery.

    Without `public_key_pem` a key pair is generated and the private key written (mode 0600)
    to `key_dir` or a fresh temporary directory, which is removed on exit.
    """
    specs = [parse_fault(f) if isinstance(f, str) else f for f in faults]
    created_dir: Path | None = None
    private_path: Path | None = None
    if public_key_pem is None:
        private_pem, public_pem = await trio.to_thread.run_sync(generate_key_pair)
        if key_dir is None:
            created_dir = Path(tempfile.mkdtemp(prefix="kalshi-sim-"))
            target = created_dir
        else:
            target = Path(key_dir)
            target.mkdir(parents=True, exist_ok=True)
        private_path = _write_private_key(target, private_pem)
    else:
        public_pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    try:
        authenticator = Authenticator(
            key_id or str(uuid.uuid4()), parse_public_key(public_pem),
            lenient_salt=lenient_salt, max_age_s=max_age_s, max_future_s=max_future_s,
            wall_clock=time.time,
        )
        exchange = Exchange(ExchangeConfig(
            seed=seed, markets=markets,
            start_ts=int(time.time()) if start_ts is None else int(start_ts),
            history_hours=history_hours, legacy=legacy, lifecycle_noise=lifecycle_noise,
            record_ticks=record_ticks,
        ))
        sim = Sim(
            exchange, clock_speed=speed, manual_clock=manual_clock, authenticator=authenticator,
            rate=rate, burst=burst,
            tick_rate=DEFAULT_TICK_RATE if tick_rate is None else tick_rate,
            host=host, port=port, ping_interval=ping_interval, ws_buffer_limit=ws_buffer_limit,
            step_interval=step_interval, fault_specs=specs, private_key_path=private_path,
            public_key_pem=public_pem,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.serve)
            try:
                yield sim
            finally:
                nursery.cancel_scope.cancel()
    finally:
        if created_dir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(created_dir)
