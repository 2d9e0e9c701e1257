"""The rate limit's token bucket (runtime/asya_runtime/sidecar/rate_limit.py): its arithmetic, the in-process store,
and the shared store's conditional UpdateItem against moto's DynamoDB server, with several takers racing."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest
from support.status_table import StatusTable

from asya_runtime.sidecar.metrics import Metrics
from asya_runtime.sidecar.rate_limit import (
    RESERVE_AHEAD_S,
    LocalBucket,
    RateLimiter,
    SharedBucket,
    TokenBucket,
    bucket_key,
)


def test_a_full_bucket_gives_burst_tokens_now_then_one_per_interval() -> None:
    bucket = TokenBucket(per_second=4, burst=3)
    starts = bucket.starts(base=100.0, count=6)
    assert starts == pytest.approx([99.5, 99.75, 100.0, 100.25, 100.5, 100.75])
    ready = [max(100.0, s) for s in starts]
    assert ready[:3] == [100.0, 100.0, 100.0]  # the burst: three at once
    assert [b - a for a, b in itertools.pairwise(ready[2:])] == pytest.approx([0.25] * 3)


def test_how_many_fit_and_when_the_next_fits() -> None:
    bucket = TokenBucket(per_second=2, burst=1)  # interval 0.5 s, window 0.5 s
    ahead = {"ahead_s": 1.0}
    # full (tat in the past): one now and ahead_s worth more
    assert bucket.fitting(tat=0.0, now=100.0, **ahead) == 3
    assert bucket.fitting(tat=0.0, now=100.0) == 1 + int(RESERVE_AHEAD_S * 2)
    # reserved 1.5 s ahead: tat - window = 101.0 = now + ahead: nothing more fits until tat moves back by one interval
    assert bucket.fitting(tat=101.5, now=100.0, **ahead) == 0
    assert bucket.ready_at(tat=101.5, now=100.0, **ahead) == pytest.approx(100.5)
    assert bucket.fitting(tat=101.5, now=100.5, **ahead) == 1
    assert bucket.ready_at(tat=99.0, now=100.0, **ahead) == 100.0  # fits now


def test_any_window_sees_at_most_burst_plus_rate_times_its_length() -> None:
    """Random takes at random times from one bucket: every token's time obeys the token bucket's bound."""
    rng = random.Random(7)
    bucket = TokenBucket(per_second=5, burst=4)
    local = LocalBucket(bucket)
    now, used = 1000.0, []
    for _ in range(300):
        now += rng.choice([0.0, 0.01, 0.1, 0.5, 2.0])
        starts = asyncio.run(local.take(rng.randint(1, 10), now=now))
        if starts is None:
            assert local.retry_at > now
            continue
        used += [max(now, s) for s in starts]
    used.sort()
    for i, j in itertools.combinations(range(len(used)), 2):
        assert j - i + 1 <= bucket.burst + bucket.per_second * (used[j] - used[i]) + 1e-6


def shared(table: StatusTable, call: object, *, per_second: float, burst: int, actor: str = "api") -> SharedBucket:
    return SharedBucket(bucket=TokenBucket(per_second=per_second, burst=burst), table=table.name, actor=actor,
                        call=call)  # type: ignore[arg-type]


def test_racing_takers_on_one_item_never_share_a_token(status_table: StatusTable) -> None:
    """Six takers (six replicas) with their own view of the item take concurrently for a few seconds: the tokens
    they got, laid side by side, never overlap and never exceed the bucket's bound."""
    per_second, burst = 20.0, 5

    async def run() -> tuple[list[float], int, int]:
        async with status_table.store() as store:
            takers = [shared(status_table, store._call, per_second=per_second, burst=burst) for _ in range(6)]
            got: list[float] = []
            requests = 0
            failed = 0

            async def replica(taker: SharedBucket) -> None:
                nonlocal requests, failed
                until = time.time() + 3.0
                while time.time() < until:
                    requests += 1
                    starts = await taker.take(3, now=time.time())
                    if starts is None:
                        failed += 1
                        await asyncio.sleep(max(0.0, taker.retry_at - time.time()))
                        continue
                    got.extend(starts)

            await asyncio.gather(*(replica(t) for t in takers))
            return got, requests, failed

    got, requests, failed = asyncio.run(run())
    got.sort()
    interval = 1 / per_second
    # one shared sequence: consecutive tokens exactly one interval apart, however the takes interleaved
    odd = [(a, b - a) for a, b in itertools.pairwise(got) if b - a != pytest.approx(interval, abs=2e-6)]
    assert not odd, f"a token twice or a gap: {odd[:5]}"
    assert len(got) >= 3.0 * per_second  # and the takers kept the bucket busy
    assert len(got) <= burst + per_second * (3.0 + RESERVE_AHEAD_S + 0.5)
    assert failed < requests  # most takes landed at once
    item = status_table.item(bucket_key("api"))
    assert item is not None and "tat" in item and "expires_at" in item and "status" not in item


def test_a_failed_condition_tells_the_taker_the_item_as_it_is(status_table: StatusTable) -> None:
    """Taker ``b`` believes the bucket full; ``a`` just emptied it: ``b``'s try fails with the item in the error
    (ReturnValuesOnConditionCheckFailure, parsed through the lean client), and its next try takes what fits."""

    async def run() -> None:
        async with status_table.store() as store:
            a = shared(status_table, store._call, per_second=2, burst=2)
            b = shared(status_table, store._call, per_second=2, burst=2)
            now = time.time()
            assert await a.take(4, now=now) is not None  # 2 now, 2 within the next second
            assert await b.take(1, now=now) is None  # the full-bucket form: refused...
            assert b.known_tat == pytest.approx(a.known_tat)  # ...with the item's tat in the answer
            assert b.retry_at == now  # its reservation fits: the debt form goes at once
            starts = await b.take(1, now=now)
            # after a's four tokens (now, now, now + 0.5, now + 1.0)
            assert starts is not None and starts[0] == pytest.approx(now + 1.5, abs=1e-3)

    asyncio.run(run())


def test_calls_wait_for_their_token_and_stop_waiting_when_the_sidecar_stops() -> None:
    async def run() -> None:
        stopping = asyncio.Event()
        limiter = RateLimiter(store=LocalBucket(TokenBucket(per_second=10, burst=2)), stopping=stopping,
                              metrics=Metrics())
        started = time.monotonic()
        await asyncio.gather(*(limiter.admit() for _ in range(6)))  # 2 at once, then 4 at 0.1 s each
        assert 0.35 <= time.monotonic() - started < 1.5
        slow = RateLimiter(store=LocalBucket(TokenBucket(per_second=0.1, burst=1)), stopping=stopping,
                           metrics=Metrics())
        await slow.admit()  # the one token
        waiting = asyncio.ensure_future(slow.admit())  # the next is 10 s away
        await asyncio.sleep(0.2)
        assert not waiting.done()
        stopping.set()
        await asyncio.wait_for(waiting, timeout=2)  # released at once: actor.py requeues it

    asyncio.run(run())
