"""Guards: shared partner-wide objects, breaker metrics, and what /readyz reports."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from syncd.config import PartnerSettings
from syncd.connectors import guesty, registry
from syncd.http.breaker import State
from syncd.http.guards import Guards, LimitSpec
from syncd.http.tiers import parse_tier
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.web.app import WebContext, create_app

pytestmark = pytest.mark.anyio


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def state_gauge(metrics: Metrics, scope: str, state: State) -> float:
    return float(metrics.breaker_state.labels("guesty", scope, state.value)._value.get())


def trip(guards: Guards, integration: str, clock: Clock) -> None:
    _, breakers = guards.for_integration("guesty", integration, LimitSpec())
    own = breakers.breakers[1]
    for _ in range(own.policy.failure_threshold):
        permit = own.admit(clock())
        assert permit is not None
        own.record(permit, False, clock())


def test_breaker_state_is_a_one_hot_gauge_and_open_ones_are_reported() -> None:
    clock = Clock()
    metrics = Metrics()
    guards = Guards(metrics, get_logger(), clock=clock)
    guards.for_integration("guesty", "healthy", LimitSpec())
    trip(guards, "broken", clock)
    assert state_gauge(metrics, "broken", State.OPEN) == 1
    assert state_gauge(metrics, "broken", State.CLOSED) == 0
    assert state_gauge(metrics, "healthy", State.CLOSED) == 1
    assert state_gauge(metrics, "*", State.CLOSED) == 1  # the partner-wide breaker
    clock.now = 12.0
    assert guards.readiness() == {"guesty/broken": {"state": "open", "retry_in_s": 18.0, "partner": "guesty"}}
    assert metrics.breaker_transitions.labels("guesty", "open")._value.get() == 1


def test_effective_rates_are_published_per_scope_and_tier() -> None:
    metrics = Metrics()
    guards = Guards(metrics, get_logger(), clock=Clock())
    spec = LimitSpec(tiers=[parse_tier("120/min")], app_tiers=[parse_tier("15/10s")], safety_factor=0.8)
    guards.for_integration("guesty", "acme", spec)
    assert metrics.effective_rate.labels("guesty", "acme", "120/60s")._value.get() == pytest.approx(1.6)
    assert metrics.effective_rate.labels("guesty", "*", "15/10s")._value.get() == pytest.approx(1.2)


async def test_readyz_lists_open_breakers_without_becoming_unready() -> None:
    clock = Clock()
    guards = Guards(Metrics(), get_logger(), clock=clock)
    trip(guards, "broken", clock)

    async def ok() -> None:
        return None

    def detail() -> dict[str, object]:
        found = guards.readiness()
        return {"open_breakers": found} if found else {}

    app = create_app(WebContext(metrics=Metrics(), pings={"database": ok}, detail=detail))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["detail"]["open_breakers"]["guesty/broken"]["state"] == "open"


def test_limits_come_from_the_partner_declaration_overridden_by_configuration() -> None:
    spec = registry.limit_spec(guesty.INFO, PartnerSettings())
    assert [str(t) for t in spec.tiers] == ["15/1s", "120/60s", "5000/3600s"]
    assert spec.safety_factor == 0.8 and spec.max_concurrency == 15 and not spec.app_tiers
    hostaway_like = replace(guesty.INFO, rate_limits=("20/10s",), app_rate_limits=("15/10s",))
    spec = registry.limit_spec(hostaway_like, PartnerSettings(rate_limits=("10/s",), safety_factor=0.5))
    assert [str(t) for t in spec.tiers] == ["10/1s"]
    assert [str(t) for t in spec.app_tiers] == ["15/10s"] and spec.safety_factor == 0.5
