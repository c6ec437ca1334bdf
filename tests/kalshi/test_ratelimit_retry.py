"""Token bucket and backoff policy, on trio's mock clock."""

from __future__ import annotations

import itertools
import random

import pytest
import trio
import trio.testing

from ingestor.kalshi.errors import (
    KalshiAuthError,
    KalshiBadRequestError,
    KalshiRateLimitError,
    KalshiResponseError,
    KalshiServerError,
    KalshiTransportError,
    api_error,
)
from ingestor.kalshi.ratelimit import (
    DEFAULT_BURST,
    DEFAULT_RATE,
    TokenBucket,
    configure_default_limiter,
    default_limiter,
    server_matched,
)
from ingestor.kalshi.retry import Backoff, RetryPolicy


async def test_bucket_allows_burst_then_paces_at_rate(autojump_clock: trio.testing.MockClock):
    bucket = TokenBucket(rate=20, burst=40)
    start = trio.current_time()
    times = []
    for _ in range(100):
        await bucket.acquire()
        times.append(trio.current_time() - start)
    assert all(t == 0 for t in times[:40])
    assert times[40] == pytest.approx(0.05)
    assert times[-1] == pytest.approx(3.0)  # 60 tokens beyond the burst at 20/s
    gaps = [b - a for a, b in itertools.pairwise(times[40:])]
    assert all(g == pytest.approx(0.05) for g in gaps)


async def test_bucket_refills_while_idle_up_to_burst(autojump_clock: trio.testing.MockClock):
    bucket = TokenBucket(rate=10, burst=5)
    for _ in range(5):
        await bucket.acquire()
    assert bucket.tokens == pytest.approx(0)
    await trio.sleep(0.2)
    assert bucket.tokens == pytest.approx(2)
    await trio.sleep(60)
    assert bucket.tokens == pytest.approx(5)


async def test_bucket_is_shared_fairly_by_concurrent_tasks(
    autojump_clock: trio.testing.MockClock,
):
    bucket = TokenBucket(rate=10, burst=1)
    done: list[tuple[int, float]] = []

    async def worker(i: int) -> None:
        for _ in range(3):
            await bucket.acquire()
            done.append((i, trio.current_time()))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(worker, i)
    assert len(done) == 12
    assert done[-1][1] - start == pytest.approx(1.1)  # 1 burst token + 11 at 10/s
    # FIFO: no task gets two turns before every other task had one
    order = [i for i, _ in done]
    assert sorted(order[:4]) == [0, 1, 2, 3]


async def test_drain_makes_the_next_caller_wait(autojump_clock: trio.testing.MockClock):
    bucket = TokenBucket(rate=4, burst=8)
    bucket.drain()
    start = trio.current_time()
    await bucket.acquire()
    assert trio.current_time() - start == pytest.approx(0.25)


async def test_cancelled_acquire_takes_no_token(autojump_clock: trio.testing.MockClock):
    bucket = TokenBucket(rate=1, burst=1)
    await bucket.acquire()
    with trio.move_on_after(0.5):
        await bucket.acquire()
    assert bucket.tokens == pytest.approx(0.5)


def test_bucket_rejects_bad_settings():
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=5, burst=0.5)
    assert TokenBucket(rate=5).burst == 10


async def test_cost_above_burst_is_an_error():
    with pytest.raises(ValueError):
        await TokenBucket(rate=1, burst=2).acquire(3)


def test_default_limiter_is_one_shared_instance_with_basic_tier():
    configure_default_limiter(DEFAULT_RATE, DEFAULT_BURST)
    a, b = default_limiter(), default_limiter()
    assert a is b
    assert (a.rate, a.burst, a.capacity) == (20, 40, 39)
    replaced = configure_default_limiter(30, 60)
    assert default_limiter() is replaced and replaced.rate == 30
    configure_default_limiter(DEFAULT_RATE, DEFAULT_BURST)


def test_backoff_grows_exponentially_with_cap_and_jitter():
    backoff = Backoff(base=0.5, factor=2, cap=10, jitter=0.5, rng=random.Random(1))
    for attempt, ceiling in [(1, 0.5), (2, 1), (3, 2), (4, 4), (5, 8), (6, 10), (100, 10)]:
        assert backoff.ceiling(attempt) == ceiling
        d = backoff.delay(attempt)
        assert ceiling * 0.5 <= d <= ceiling
    assert Backoff(base=1, jitter=0).delay(3) == 4
    delays = {Backoff(base=1, jitter=1, rng=random.Random(s)).delay(2) for s in range(10)}
    assert len(delays) > 1  # jittered


def test_backoff_rejects_bad_settings():
    with pytest.raises(ValueError):
        Backoff(jitter=2)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_retry_policy_decides_by_error_kind():
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(api_error(429, b""), 1)
    assert policy.should_retry(api_error(503, b""), 2)
    assert policy.should_retry(KalshiTransportError("timeout"), 1)
    assert not policy.should_retry(api_error(429, b""), 3)  # attempts used up
    assert not policy.should_retry(api_error(400, b""), 1)
    assert not policy.should_retry(api_error(401, b""), 1)
    assert not policy.should_retry(api_error(404, b""), 1)
    assert not policy.should_retry(KalshiResponseError("bad body"), 1)
    assert isinstance(api_error(400, b""), KalshiBadRequestError)
    assert isinstance(api_error(401, b""), KalshiAuthError)


def test_retry_after_wins_over_backoff_but_is_capped():
    policy = RetryPolicy(backoff=Backoff(base=1, jitter=0), max_retry_after=30)
    assert policy.delay(api_error(429, b"", retry_after="7"), 1) == 7
    assert policy.delay(api_error(503, b"", retry_after="9999"), 1) == 30
    assert policy.delay(api_error(503, b""), 3) == 4
    assert isinstance(api_error(503, b""), KalshiServerError)
    assert isinstance(api_error(429, b""), KalshiRateLimitError)


async def test_server_matched_bucket_keeps_one_token_back(autojump_clock):
    bucket = server_matched(20, 4)
    start = trio.current_time()
    times = []
    for _ in range(5):
        await bucket.acquire()
        times.append(trio.current_time() - start)
    assert times == pytest.approx([0, 0, 0, 0.05, 0.10])
    assert server_matched(5, 1).capacity == 1
    with pytest.raises(ValueError):
        TokenBucket(rate=5, burst=2, reserve=1.5)
