"""PartnerClient over httpx.MockTransport: breakers, 429 handling and per-attempt logs."""

from __future__ import annotations

import anyio
import httpx
import orjson
import pytest
from structlog.testing import capture_logs

from syncd import errors
from syncd.http.breaker import BreakerPolicy, Breakers, CircuitBreaker, State
from syncd.http.budget import RateBudget
from syncd.http.classify import PartnerRules
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.throttle import Throttle
from syncd.http.tiers import parse_tier
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics

pytestmark = pytest.mark.anyio
BASE = "https://api.partner.test/v1"
POLICY = BreakerPolicy(
    failure_threshold=3,
    failure_ratio=0.5,
    window_s=60,
    cooldown_s=30,
    half_open_probes=2,
    probe_timeout_s=0.05,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Partner:
    """Answers every request with ``status`` (or hangs); counts what reached it."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.hang = False
        self.requests = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.hang:
            await anyio.sleep(30)
        return httpx.Response(self.status, headers=self.headers, json={"ok": self.status < 400})


def client_of(
    partner: Partner, clock: Clock, *, max_attempts: int = 1, throttle: Throttle | None = None, **opts: float
) -> tuple[PartnerClient, CircuitBreaker, Metrics]:
    metrics = Metrics()
    breaker = CircuitBreaker("p/i", POLICY)
    options = ClientOptions(
        partner="p",
        integration_id="i",
        base_url=BASE,
        max_attempts=max_attempts,
        backoff_initial_s=0.001,
        backoff_max_s=0.002,
        **opts,  # type: ignore[arg-type]
    )
    client = PartnerClient(
        httpx.MockTransport(partner),
        options,
        throttle=throttle or Throttle(),
        breakers=Breakers([breaker]),
        metrics=metrics,
        log=get_logger(),
        clock=clock,
    )
    return client, breaker, metrics


async def fail_n(client: PartnerClient, n: int) -> None:
    for _ in range(n):
        with pytest.raises(errors.PartnerUnavailable):
            await client.get("/things", decode=orjson.loads)


async def test_4xx_floods_never_trip_the_breaker() -> None:
    partner = Partner(404)
    client, breaker, _ = client_of(partner, Clock())
    for _ in range(50):
        assert await client.get_or_none("/things/{id}", "/things/x", decode=orjson.loads) is None
    partner.status = 422
    for _ in range(10):
        with pytest.raises(errors.PartnerRejected):
            await client.get("/things", decode=orjson.loads)
    assert partner.requests == 60 and breaker.state is State.CLOSED


async def test_429s_never_trip_the_breaker() -> None:
    partner = Partner(429, {"Retry-After": "0"})
    client, breaker, metrics = client_of(partner, Clock())
    for _ in range(10):
        with pytest.raises(errors.RateLimited):
            await client.get("/things", decode=orjson.loads)
    assert breaker.state is State.CLOSED
    assert metrics.rate_limited.labels("p")._value.get() == 10


async def test_an_open_breaker_fails_fast_without_sending() -> None:
    partner = Partner(503)
    clock = Clock()
    client, breaker, metrics = client_of(partner, clock)
    await fail_n(client, 3)
    assert breaker.state is State.OPEN
    clock.now += 10
    with pytest.raises(errors.CircuitOpen) as refused:
        await client.get("/things", decode=orjson.loads)
    assert refused.value.retry_in == pytest.approx(20.0)
    assert partner.requests == 3
    assert metrics.breaker_rejections.labels("p")._value.get() == 1


async def test_an_open_breaker_does_not_queue_behind_the_rate_limiter() -> None:
    partner = Partner(503)
    clock = Clock()
    budget = RateBudget([parse_tier("1/min")], 1.0, clock())
    client, breaker, _ = client_of(partner, clock, throttle=Throttle([budget], clock=clock))
    for _ in range(3):
        breaker.record(breaker.admit(clock()) or pytest.fail("closed admits"), False, clock())
    with anyio.fail_after(1):  # would wait a minute for budget if it queued
        with pytest.raises(errors.CircuitOpen):
            await client.get("/things", decode=orjson.loads)
    assert partner.requests == 0


async def test_half_open_admits_bounded_probes_each_with_a_timeout() -> None:
    partner = Partner(503)
    clock = Clock()
    client, breaker, _ = client_of(partner, clock)
    await fail_n(client, 3)
    clock.now += 30  # the cool-down is over
    partner.hang = True  # the partner accepts connections but never answers
    outcomes: list[str] = []

    async def one() -> None:
        try:
            await client.get("/things", decode=orjson.loads)
        except errors.CircuitOpen:
            outcomes.append("refused")
        except errors.PartnerUnavailable as exc:
            outcomes.append(str(exc))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(one)
    assert partner.requests == 3 + 2  # two probes, the configured bound
    assert sorted(outcomes) == ["probe of /things timed out"] * 2 + ["refused"] * 4
    assert breaker.state is State.OPEN  # the probes failed: a new cool-down


async def test_a_successful_probe_closes_the_breaker() -> None:
    partner = Partner(500)
    clock = Clock()
    client, breaker, _ = client_of(partner, clock)
    await fail_n(client, 3)
    clock.now += 30
    partner.status = 200
    assert await client.get("/things", decode=orjson.loads) == {"ok": True}
    assert breaker.state is State.CLOSED


async def test_undecodable_bodies_count_as_transient_failures() -> None:
    def garbled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"results": [1, 2')

    clock = Clock()
    breaker = CircuitBreaker("p/i", POLICY)
    client = PartnerClient(
        httpx.MockTransport(garbled),
        ClientOptions(partner="p", integration_id="i", base_url=BASE, max_attempts=1),
        throttle=Throttle(),
        breakers=Breakers([breaker]),
        metrics=Metrics(),
        log=get_logger(),
        clock=clock,
    )
    for _ in range(3):
        with pytest.raises(errors.PartnerUnavailable, match="undecodable"):
            await client.get("/things", decode=orjson.loads)
    assert breaker.state is State.OPEN


async def test_each_attempt_logs_its_number_and_error_class() -> None:
    responses = iter([httpx.Response(502), httpx.Response(429), httpx.Response(200, json=[])])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(responses)

    client = PartnerClient(
        httpx.MockTransport(handler),
        ClientOptions(partner="p", integration_id="i", base_url=BASE, backoff_initial_s=0.001),
        throttle=Throttle(),
        metrics=Metrics(),
        log=get_logger(),
    )
    with capture_logs() as logs:
        await client.get("/things", decode=orjson.loads)
    calls = [(e["attempt"], e["status"], e["error_class"]) for e in logs if e["event"] == "api_call"]
    assert calls == [(1, "502", "transient"), (2, "429", "rate_limited"), (3, "200", None)]


async def test_a_retry_after_past_the_deadline_is_not_waited_for() -> None:
    partner = Partner(429, {"Retry-After": "5"})
    client, _, _ = client_of(partner, Clock(), max_attempts=5, request_deadline_s=1.0)
    with anyio.fail_after(1), pytest.raises(errors.RateLimited):
        await client.get("/things", decode=orjson.loads)
    assert partner.requests == 1


async def test_a_500_that_means_auth_is_classified_by_the_partner_rule_not_the_status() -> None:
    """Lodgify sends "Authorization has been denied" as HTTP 500 with code 999: an auth
    failure (refresh once, then fail), never a transient one for retries or the breaker."""

    def lodgify_codes(status: int, body: object) -> errors.PartnerError | None:
        if status == 500 and isinstance(body, dict) and body.get("code") == 999:
            return errors.AuthFailed(str(body.get("message")), status=status)
        return None

    clock = Clock()
    breaker = CircuitBreaker("p/i", POLICY)
    requests = 0

    def counting(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return httpx.Response(500, json={"message": "Authorization has been denied", "code": 999})

    client = PartnerClient(
        httpx.MockTransport(counting),
        ClientOptions(partner="p", integration_id="i", base_url=BASE),
        throttle=Throttle(),
        breakers=Breakers([breaker]),
        metrics=Metrics(),
        log=get_logger(),
        rules=PartnerRules(body_error=lodgify_codes),
        clock=clock,
    )
    for _ in range(5):
        with pytest.raises(errors.AuthFailed, match="denied"):
            await client.get("/things", decode=orjson.loads)
    assert requests == 5 * 2  # the credentials are refreshed once per call, never retried more
    assert breaker.state is State.CLOSED
