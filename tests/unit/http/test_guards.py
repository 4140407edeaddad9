"""Guards: shared partner-wide objects, breaker metrics, and what /readyz reports."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from syncd.config import PartnerSettings
from syncd.connectors import guesty, registry
from syncd.http.breaker import BreakerPolicy, State
from syncd.http.budget import DEFAULT_AIMD, AimdPolicy
from syncd.http.guards import PARTNER_SCOPE, BreakerView, Guards, LimitSpec
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


def test_the_status_board_sees_every_breaker_with_its_state() -> None:
    clock = Clock()
    guards = Guards(Metrics(), get_logger(), clock=clock)
    guards.for_integration("guesty", "healthy", LimitSpec())
    trip(guards, "broken", clock)
    clock.now = 12.0
    assert guards.breakers() == [
        BreakerView("guesty", PARTNER_SCOPE, State.CLOSED, 0.0),
        BreakerView("guesty", "healthy", State.CLOSED, 0.0),
        BreakerView("guesty", "broken", State.OPEN, 18.0),
    ]
    clock.now = 30.0  # the cool-down has passed: half-open, a probe may go now
    assert guards.breakers()[2] == BreakerView("guesty", "broken", State.HALF_OPEN, 0.0)


def test_the_budget_per_second_is_each_integrations_slowest_tier_summed_capped_partner_wide() -> None:
    guards = Guards(Metrics(), get_logger(), clock=Clock())
    tiers = [parse_tier("15/s"), parse_tier("120/min"), parse_tier("5000/h")]
    guards.for_integration("guesty", "a", LimitSpec(tiers=tiers, safety_factor=0.8))
    assert guards.budget_per_s("guesty") == pytest.approx(5000 / 3600 * 0.8)
    guards.for_integration("guesty", "b", LimitSpec(tiers=tiers, safety_factor=0.8))
    assert guards.budget_per_s("guesty") == pytest.approx(2 * 5000 / 3600 * 0.8)
    assert guards.budget_per_s("unknown") is None

    capped = Guards(Metrics(), get_logger(), clock=Clock())
    spec = LimitSpec(tiers=[parse_tier("10/s")], app_tiers=[parse_tier("15/10s")])
    capped.for_integration("p", "a", spec)
    capped.for_integration("p", "b", spec)
    assert capped.budget_per_s("p") == pytest.approx(1.5)  # 2 x 10/s, but 1.5/s app-wide

    unlimited = Guards(Metrics(), get_logger(), clock=Clock())
    unlimited.for_integration("p", "a", LimitSpec())
    assert unlimited.budget_per_s("p") is None


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
    spec = registry.limit_spec(guesty.PARTNER, PartnerSettings())
    assert [str(t) for t in spec.tiers] == ["15/1s", "120/60s", "5000/3600s"]
    assert spec.safety_factor == 0.8 and spec.max_concurrency == 15 and not spec.app_tiers
    hostaway_like = replace(guesty.PARTNER, rate_limits=("20/10s",), app_rate_limits=("15/10s",))
    spec = registry.limit_spec(hostaway_like, PartnerSettings(rate_limits=("10/s",), safety_factor=0.5))
    assert [str(t) for t in spec.tiers] == ["10/1s"]
    assert [str(t) for t in spec.app_tiers] == ["15/10s"] and spec.safety_factor == 0.5
    spec = registry.limit_spec(hostaway_like, PartnerSettings(app_rate_limits=()))
    assert [str(t) for t in spec.tiers] == ["20/10s"] and not spec.app_tiers


def test_default_breaker_and_adaptive_settings_are_the_modules_defaults() -> None:
    spec = registry.limit_spec(guesty.PARTNER, PartnerSettings())
    assert spec.breaker == BreakerPolicy()
    assert spec.partner_breaker == BreakerPolicy(failure_threshold=30)
    assert spec.aimd == DEFAULT_AIMD


def test_configured_breaker_policy_governs_the_integrations_breaker() -> None:
    partner = PartnerSettings.model_validate(
        {"breaker": {"failure_threshold": 2, "cooldown_s": 5, "partner_failure_threshold": 4}}
    )
    spec = registry.limit_spec(guesty.PARTNER, partner)
    clock = Clock()
    guards = Guards(Metrics(), get_logger(), clock=clock)
    _, breakers = guards.for_integration("guesty", "acme", spec)
    shared, own = breakers.breakers
    assert shared.policy.failure_threshold == 4
    for _ in range(2):
        permit = own.admit(clock())
        assert permit is not None
        own.record(permit, False, clock())
    assert own.current(clock()) is State.OPEN  # after 2 failures, not the default 10
    clock.now = 4.9
    assert own.admit(clock()) is None
    clock.now = 5.0
    assert own.admit(clock()) is not None  # half-open after the configured 5 s cool-down


def test_configured_adaptive_policy_sets_how_far_a_429_slows_the_budget() -> None:
    partner = PartnerSettings.model_validate({"adaptive": {"decrease": 0.25, "floor": 0.2}})
    spec = registry.limit_spec(guesty.PARTNER, partner)
    assert spec.aimd == AimdPolicy(decrease=0.25, increase=0.1, quiet_s=30.0, floor=0.2)


def test_a_breaker_closing_again_calls_back_once() -> None:
    """The daemon wakes runs that failed fast on the open breaker when it closes."""
    clock = Clock()
    guards = Guards(Metrics(), get_logger(), clock=clock)
    closed: list[float] = []
    guards.on_circuit_closed(lambda: closed.append(clock()))
    _, breakers = guards.for_integration("guesty", "broken", LimitSpec())
    own = breakers.breakers[1]
    for _ in range(own.policy.failure_threshold):
        permit = own.admit(clock())
        assert permit is not None
        own.record(permit, False, clock())
    assert own.current(clock()) is State.OPEN
    assert closed == []  # opening is not closing
    clock.now = own.policy.cooldown_s
    probe = own.admit(clock())
    assert probe is not None and probe.probe
    assert closed == []  # half-open is not closed either
    own.record(probe, True, clock())
    assert closed == [own.policy.cooldown_s]
