"""The throttle's async shell with an injected clock: sleeping advances it, nothing waits."""

from __future__ import annotations

import anyio
import pytest

from syncd.http.budget import RateBudget
from syncd.http.guards import Guards, LimitSpec
from syncd.http.throttle import Pass, Throttle
from syncd.http.tiers import parse_tier
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics

pytestmark = pytest.mark.anyio


class FakeClock:
    """Time that moves only when a coroutine sleeps (and then exactly as long as asked)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


def throttle_of(clock: FakeClock, *tiers: str, **kwargs: object) -> Throttle:
    budget = RateBudget([parse_tier(t) for t in tiers], 0.8, clock())
    return Throttle([budget], clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


async def test_requests_wait_for_budget_in_arrival_order() -> None:
    clock = FakeClock()
    throttle = throttle_of(clock, "5/s")  # 4 at once, then one every 0.25 s
    times: list[tuple[int, float]] = []

    async def one(n: int) -> None:
        async with throttle.slot() as admitted:
            times.append((n, clock.now))
            assert isinstance(admitted, Pass)

    async with anyio.create_task_group() as tg:
        for n in range(7):
            tg.start_soon(one, n)
    assert [n for n, _ in times] == list(range(7))
    assert [t for _, t in times] == pytest.approx([0, 0, 0, 0, 0.25, 0.5, 0.75])


async def test_during_a_retry_after_block_nothing_goes_out() -> None:
    clock = FakeClock()
    throttle = throttle_of(clock, "100/s")
    async with throttle.slot() as admitted:
        pass
    assert throttle.throttled(admitted, 3.0, []) == 3.0
    async with throttle.slot() as later:
        assert clock.now >= 3.0
    assert later.waited == pytest.approx(3.0)


async def test_the_partners_headers_refine_the_account_budget() -> None:
    clock = FakeClock()
    changes: list[tuple[float, ...]] = []
    throttle = throttle_of(clock, "120/min", on_change=lambda b, _: changes.append(b.effective_rates(0)))
    async with throttle.slot() as admitted:
        pass
    throttle.observe(admitted, [("x-ratelimit-limit-minute", "60"), ("x-ratelimit-remaining-minute", "59")])
    assert changes[-1] == pytest.approx((0.8,))


async def test_concurrency_caps_hold_requests_back() -> None:
    clock = FakeClock()
    throttle = throttle_of(clock, "1000/s", concurrency=anyio.Semaphore(2))
    inside = 0
    most = 0

    async def one() -> None:
        nonlocal inside, most
        async with throttle.slot():
            inside += 1
            most = max(most, inside)
            await anyio.lowlevel.checkpoint()
            inside -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    assert most == 2


async def test_a_partner_wide_budget_is_shared_by_its_integrations() -> None:
    clock = FakeClock()
    guards = Guards(Metrics(), get_logger(), clock=clock)
    spec = LimitSpec(tiers=[parse_tier("100/s")], app_tiers=[parse_tier("5/s")], safety_factor=0.8)
    a, _ = guards.for_integration("hostaway", "a", spec)
    b, _ = guards.for_integration("hostaway", "b", spec)
    assert a.shared == b.shared and a.budgets != b.budgets
    for throttle in (a, b, a, b):
        admitted = await throttle.acquire()
        throttle.release(admitted)
    # The partner's 4-request burst is spent across both integrations.
    assert a.shared[0].wait_s(clock()) > 0
    assert a.budgets[0].wait_s(clock()) == 0


async def test_a_429_slows_every_scope_the_request_passed() -> None:
    clock = FakeClock()
    guards = Guards(Metrics(), get_logger(), clock=clock)
    spec = LimitSpec(tiers=[parse_tier("20/10s")], app_tiers=[parse_tier("15/10s")], safety_factor=1.0)
    throttle, _ = guards.for_integration("hostaway", "a", spec)
    admitted = await throttle.acquire()
    throttle.release(admitted)
    throttle.throttled(admitted, None, [])
    assert throttle.budgets[0].effective_rates(clock()) == pytest.approx((1.0,))
    assert throttle.shared[0].effective_rates(clock()) == pytest.approx((0.75,))
