"""The process's rate budgets, concurrency caps and circuit breakers, per integration
and per partner, wired to their metrics.

Partner-wide objects (a budget for limits on the whole app, a concurrency cap, a
breaker) are created once per partner and shared by all of its integrations here.
``readiness`` is what /readyz reports about them; ``breakers`` and ``budget_per_s`` are
what the status board shows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from syncd.http.breaker import BreakerPolicy, Breakers, CircuitBreaker, State
from syncd.http.budget import DEFAULT_AIMD, AimdPolicy, RateBudget
from syncd.http.throttle import Clock, Throttle
from syncd.http.tiers import Tier
from syncd.observability.metrics import Metrics

# A partner-wide breaker should trip on an outage of the partner, not of one account.
PARTNER_BREAKER = BreakerPolicy(failure_threshold=30)
INTEGRATION_BREAKER = BreakerPolicy()
# Label of partner-wide series in the ``scope``/``integration`` metric labels.
PARTNER_SCOPE = "*"


@dataclass(frozen=True)
class LimitSpec:
    """One integration's limits: the account's tiers and the partner app's, if any."""

    tiers: Sequence[Tier] = ()
    app_tiers: Sequence[Tier] = ()
    safety_factor: float = 1.0
    max_concurrency: int | None = None
    app_max_concurrency: int | None = None
    # None: the ``Guards`` defaults. A partner's breaker and AIMD policies are fixed by
    # the first of its integrations to be wired (they come from one partner section).
    breaker: BreakerPolicy | None = None
    partner_breaker: BreakerPolicy | None = None
    aimd: AimdPolicy | None = None


@dataclass(frozen=True)
class BreakerView:
    """One breaker as it stands: ``scope`` is the integration, or ``PARTNER_SCOPE``."""

    partner: str
    scope: str
    state: State
    retry_in_s: float


@dataclass
class _Partner:
    breaker: CircuitBreaker
    budget: RateBudget | None
    concurrency: anyio.Semaphore | None
    integrations: dict[str, CircuitBreaker] = field(default_factory=dict)
    budgets: dict[str, RateBudget] = field(default_factory=dict)


class Guards:
    def __init__(
        self,
        metrics: Metrics,
        log: Any,
        *,
        clock: Clock = time.monotonic,
        integration_breaker: BreakerPolicy = INTEGRATION_BREAKER,
        partner_breaker: BreakerPolicy = PARTNER_BREAKER,
        aimd: AimdPolicy = DEFAULT_AIMD,
    ) -> None:
        self._metrics = metrics
        self._log = log
        self._clock = clock
        self._integration_policy = integration_breaker
        self._partner_policy = partner_breaker
        self._aimd = aimd
        self._partners: dict[str, _Partner] = {}
        self._on_closed: list[Callable[[], None]] = []

    def on_circuit_closed(self, callback: Callable[[], None]) -> None:
        """``callback`` runs (synchronously) whenever any breaker closes again."""
        self._on_closed.append(callback)

    def for_integration(
        self, partner: str, integration_id: str, spec: LimitSpec
    ) -> tuple[Throttle, Breakers]:
        """The throttle and breakers one integration's client passes through."""
        shared = self._partner(partner, spec)
        now = self._clock()
        budget = RateBudget(spec.tiers, spec.safety_factor, now, spec.aimd or self._aimd)
        breaker = self._breaker(partner, integration_id, spec.breaker or self._integration_policy)
        shared.integrations[integration_id] = breaker
        shared.budgets[integration_id] = budget
        throttle = Throttle(
            [budget],
            shared=[shared.budget] if shared.budget is not None else [],
            concurrency=_semaphore(spec.max_concurrency),
            shared_concurrency=shared.concurrency,
            clock=self._clock,
            on_change=lambda b, shared: self._rates(partner, PARTNER_SCOPE if shared else integration_id, b),
        )
        self._rates(partner, integration_id, budget, changed=False)
        return throttle, Breakers([shared.breaker, breaker])

    def readiness(self) -> dict[str, Any]:
        """Breakers that are not closed, for /readyz's body (they do not fail readiness)."""
        now = self._clock()
        out: dict[str, Any] = {}
        for name, partner in self._partners.items():
            for breaker in (partner.breaker, *partner.integrations.values()):
                if breaker.current(now) is not State.CLOSED:
                    out[breaker.name] = {
                        "state": breaker.state.value,
                        "retry_in_s": round(breaker.retry_in(now), 1),
                        "partner": name,
                    }
        return out

    def breakers(self) -> list[BreakerView]:
        """Every breaker's state now (the partner-wide one first, per partner)."""
        now = self._clock()
        return [
            BreakerView(name, scope, breaker.current(now), round(breaker.retry_in(now), 1))
            for name, partner in self._partners.items()
            for scope, breaker in ((PARTNER_SCOPE, partner.breaker), *partner.integrations.items())
        ]

    def budget_per_s(self, partner: str) -> float | None:
        """Requests per second the partner's budgets sustain now, all its integrations
        together: each integration's slowest tier (a burst tier allows more only briefly),
        capped by the partner-wide budget. None: unlimited (or an unknown partner)."""
        found = self._partners.get(partner)
        if found is None:
            return None
        now = self._clock()

        def sustained(budget: RateBudget) -> float:
            return min(budget.effective_rates(now), default=math.inf)

        total = sum(sustained(b) for b in found.budgets.values())
        if found.budget is not None:
            total = min(total, sustained(found.budget))
        return None if math.isinf(total) or not found.budgets else total

    # --- internals ------------------------------------------------------------------

    def _partner(self, partner: str, spec: LimitSpec) -> _Partner:
        found = self._partners.get(partner)
        if found is not None:
            return found
        budget = None
        if spec.app_tiers:
            budget = RateBudget(spec.app_tiers, spec.safety_factor, self._clock(), spec.aimd or self._aimd)
            self._rates(partner, PARTNER_SCOPE, budget, changed=False)
        cap = spec.app_max_concurrency
        created = self._partners[partner] = _Partner(
            breaker=self._breaker(partner, PARTNER_SCOPE, spec.partner_breaker or self._partner_policy),
            budget=budget,
            concurrency=_semaphore(cap),
        )
        return created

    def _breaker(self, partner: str, scope: str, policy: BreakerPolicy) -> CircuitBreaker:
        name = partner if scope == PARTNER_SCOPE else f"{partner}/{scope}"
        gauge = self._metrics.breaker_state
        transitions = self._metrics.breaker_transitions

        def changed(breaker: CircuitBreaker, before: State, after: State) -> None:
            gauge.labels(partner, scope, before.value).set(0)
            gauge.labels(partner, scope, after.value).set(1)
            transitions.labels(partner, after.value).inc()
            log = self._log.warning if after is State.OPEN else self._log.info
            log("circuit_" + after.value, breaker=breaker.name, partner=partner, was=before.value)
            if after is State.CLOSED:
                for callback in self._on_closed:
                    callback()

        for state in State:
            gauge.labels(partner, scope, state.value).set(1 if state is State.CLOSED else 0)
        return CircuitBreaker(name, policy, on_change=changed)

    def _rates(self, partner: str, scope: str, budget: RateBudget, changed: bool = True) -> None:
        rates = budget.effective_rates(self._clock())
        for tier, rate in zip(budget.tiers, rates, strict=True):
            self._metrics.effective_rate.labels(partner, scope, str(tier)).set(rate)
        if changed:
            self._log.info(
                "ratelimit_changed",
                partner=partner,
                scope=scope,
                rates={str(t): round(r, 4) for t, r in zip(budget.tiers, rates, strict=True)},
                throttled=budget.throttled,
            )


def _semaphore(limit: int | None) -> anyio.Semaphore | None:
    # fast_acquire: no event-loop round trip when a slot is free (most requests).
    return anyio.Semaphore(limit, fast_acquire=True) if limit else None
