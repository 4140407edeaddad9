"""Deterministic fault decisions: seeds, probabilities, windows, filters, one-shots."""

from __future__ import annotations

import email.utils
from collections import Counter

import pytest

from syncd.simulator import fault_plan, fault_presets
from syncd.simulator.fault_plan import CompiledRules, SeededFaultPlan, decide
from syncd.simulator.fault_spec import FaultSpec, LimitParams, RateLimitParams, Rule, StatusParams
from syncd.simulator.faults import Fault, FaultContext, Hang, LimitChange, Malform, Reset, Role, Truncate

LISTINGS = "/v1/listings"
TOKEN = "/oauth2/token"


def _kinds(
    spec: FaultSpec,
    n: int,
    *,
    account: str | None = "a",
    path: str = LISTINGS,
    elapsed: float = 0.0,
    partner: str = "acme",
) -> list[str | None]:
    """Decisions for a route of ``partner``; ``TOKEN`` is its credential exchange."""
    rules = CompiledRules(spec.rules)
    role: Role = "token" if path == TOKEN else "api"
    out: list[str | None] = []
    for k in range(n):
        fault = decide(rules, spec.seed, account, path, k, elapsed, partner=partner, role=role).fault
        out.append(None if fault is None else fault.kind)
    return out


def test_same_seed_same_decisions_and_another_seed_differs() -> None:
    spec = fault_presets.dirty_network(42, seed=7)
    first = [decide(CompiledRules(spec.rules), 7, "a", LISTINGS, k, 1.0) for k in range(2000)]
    again = [decide(CompiledRules(spec.rules), 7, "a", LISTINGS, k, 1.0) for k in range(2000)]
    assert first == again
    assert _kinds(spec, 2000) == _kinds(spec, 2000)
    assert _kinds(spec, 2000) != _kinds(spec.with_seed(8), 2000)
    assert _kinds(spec, 2000, account="a") != _kinds(spec, 2000, account="b")


def test_the_plan_replays_the_pure_decisions() -> None:
    spec = fault_presets.dirty_network(42, seed=3)
    plan = SeededFaultPlan(spec)
    seen = [plan.decide(FaultContext("a", "GET", LISTINGS, {}, 50.0)) for _ in range(500)]
    assert [None if f is None else f.kind for f in seen] == _kinds(spec, 500)
    assert plan.requests_seen("a") == 500 and plan.requests_seen("b") == 0


def test_row6_mix_is_respected_over_10000_requests() -> None:
    counts = Counter(_kinds(fault_presets.dirty_network(42, seed=11), 10_000))
    expected = {"status": 0.20, "timeout": 0.10, "reset": 0.05, "truncated": 0.05, "malformed_json": 0.02}
    for kind, share in expected.items():
        assert abs(counts[kind] / 10_000 - share) < 0.015, (kind, counts[kind])
    assert abs(counts[None] / 10_000 - 0.58) < 0.02


def test_dirty_percent_scales_the_mix() -> None:
    counts = Counter(_kinds(fault_presets.dirty_network(20, seed=5), 10_000))
    assert abs((10_000 - counts[None]) / 10_000 - 0.20) < 0.015
    assert counts["status"] > counts["timeout"] > counts["malformed_json"] > 0


def test_parameters_are_drawn_from_the_seed() -> None:
    rules = CompiledRules(fault_presets.dirty_network(42).rules)
    faults = [decide(rules, 1, "a", LISTINGS, k, 0.0).fault for k in range(3000)]
    statuses = {f.status for f in faults if f is not None and f.kind == "status"}
    assert statuses == {500, 502, 503, 504}
    cuts = [
        f.wire.fraction for f in faults if f is not None and isinstance(f.wire, Reset | Truncate | Malform)
    ]
    assert cuts and all(c is not None and 0.1 <= c <= 0.9 for c in cuts)
    hangs = [f.wire for f in faults if f is not None and isinstance(f.wire, Hang)]
    assert hangs and all(h.seconds == 60.0 for h in hangs)


def test_time_windows_are_half_open() -> None:
    spec = FaultSpec((Rule("status", start_s=10, end_s=20),))
    assert _kinds(spec, 1, elapsed=9.99) == [None]
    assert _kinds(spec, 1, elapsed=10.0) == ["status"]
    assert _kinds(spec, 1, elapsed=19.99) == ["status"]
    assert _kinds(spec, 1, elapsed=20.0) == [None]


def test_request_ranges_count_from_zero() -> None:
    spec = FaultSpec((Rule("status", from_request=3, to_request=5),))
    assert _kinds(spec, 7) == [None, None, None, "status", "status", None, None]


def test_paths_and_accounts_filter() -> None:
    spec = FaultSpec(
        (
            Rule("status", paths=("/v1/reservations*",), accounts=("a",)),
            Rule("outage", paths=("/oauth2/token",)),
        )
    )
    assert _kinds(spec, 1, path="/v1/reservations/{id}") == ["status"]
    assert _kinds(spec, 1, path="/v1/reservations", account="b") == [None]
    assert _kinds(spec, 1, path=LISTINGS) == [None]
    assert _kinds(spec, 1, path="/oauth2/token", account=None) == ["outage"]
    assert _kinds(fault_presets.token_outage(5), 1, path=LISTINGS) == [None]
    assert _kinds(fault_presets.token_outage(5), 1, path=TOKEN) == ["token_outage"]


def test_partners_filter_and_roles() -> None:
    """A rule names partners as data; ``@token``/``@api`` match a route's role, whatever its path."""
    spec = FaultSpec((Rule("status", partners=("acme",), paths=("@api",)), Rule("outage", paths=("@token",))))
    assert _kinds(spec, 1, path="/v2/things", partner="acme") == ["status"]
    assert _kinds(spec, 1, path="/v2/things", partner="other") == [None]
    assert _kinds(spec, 1, path=TOKEN, partner="other") == ["outage"]
    assert _kinds(spec, 1, path=TOKEN, partner="acme") == ["outage"]


def test_storm_is_total_then_partial() -> None:
    spec = fault_presets.storm_429(60, 30, seed=2)
    assert set(_kinds(spec, 1000, elapsed=59.9)) == {"rate_limit"}
    assert set(_kinds(spec, 100, elapsed=1.0, path=TOKEN)) == {None}  # its own cap
    after = Counter(_kinds(spec, 10_000, elapsed=60.0))
    assert abs(after["rate_limit"] / 10_000 - 0.30) < 0.015


def test_retry_after_alternates_forms_by_request_parity() -> None:
    rules = CompiledRules((Rule("rate_limit", params=RateLimitParams(retry_after_s=2.5)),))
    faults = [decide(rules, 0, "a", LISTINGS, k, 0.0).fault for k in range(4)]
    assert [f.retry_after_date for f in faults if f is not None] == [False, True, False, True]
    first, second = faults[0], faults[1]
    assert first is not None and second is not None
    assert first.status == 429 and first.retry_after_header(1000.2) == "3"
    date = second.retry_after_header(1000.2)
    assert date is not None and email.utils.parsedate_to_datetime(date).timestamp() == 1003.0
    only_dates = CompiledRules((Rule("rate_limit", params=RateLimitParams(form="date")),))
    assert all(decide(only_dates, 0, "a", LISTINGS, k, 0.0).fault.retry_after_date for k in range(4))  # type: ignore[union-attr]


def test_one_shots_fire_once_per_account_and_do_not_use_the_draw() -> None:
    spec = FaultSpec(
        (
            Rule("revoke_tokens", from_request=2),
            Rule("tighten_limits", start_s=5, params=LimitParams(0.25, False)),
            Rule("status", params=StatusParams((503,))),
        )
    )
    plan = SeededFaultPlan(spec, started_at=0.0)

    def at(account: str, now: float) -> Fault | None:
        return plan.decide(FaultContext(account, "GET", LISTINGS, {}, now))

    decided = [at("a", 0.0) for _ in range(4)]
    assert [f.kind if f else None for f in decided] == ["status", "status", "revoke_tokens+status", "status"]
    assert [f.revoke_tokens if f else None for f in decided] == [False, False, True, False]
    later = at("a", 5.0)
    assert (
        later is not None
        and later.limits == LimitChange(0.25, False)
        and later.kind == "tighten_limits+status"
    )
    assert at("a", 6.0) == Fault(status=503, kind="status")
    assert [f.kind if f else None for f in (at("b", 9.0), at("b", 9.0), at("b", 9.0))] == [
        "tighten_limits+status",
        "status",
        "revoke_tokens+status",
    ]


def test_a_probability_one_rule_shadows_later_rules() -> None:
    spec = FaultSpec((Rule("rate_limit", end_s=10), Rule("status")))
    assert set(_kinds(spec, 200, elapsed=1.0)) == {"rate_limit"}
    assert set(_kinds(spec, 200, elapsed=10.0)) == {"status"}


def test_the_plan_clock_starts_at_the_first_request_unless_anchored() -> None:
    spec = fault_presets.outage(120)
    lazy = SeededFaultPlan(spec)
    assert lazy.decide(FaultContext("a", "GET", LISTINGS, {}, 500.0)) is not None
    assert lazy.decide(FaultContext("a", "GET", LISTINGS, {}, 619.9)) is not None
    assert lazy.decide(FaultContext("a", "GET", LISTINGS, {}, 620.0)) is None
    anchored = SeededFaultPlan(spec, started_at=0.0)
    assert anchored.decide(FaultContext("a", "GET", LISTINGS, {}, 500.0)) is None


def test_unit_draws_are_uniform_and_fixed() -> None:
    draws = [fault_plan.unit(1, "a", k, 0) for k in range(10_000)]
    assert all(0.0 <= d < 1.0 for d in draws)
    assert abs(sum(draws) / len(draws) - 0.5) < 0.01
    assert fault_plan.unit(1, None, 0, 0) != fault_plan.unit(1, "", 0, 0)
    assert fault_plan.unit(1, "a", 5, 0) == draws[5]


@pytest.mark.parametrize(
    ("kind", "wire_type", "status"),
    [
        ("timeout", Hang, None),
        ("reset", Reset, None),
        ("truncated", Truncate, None),
        ("malformed_json", Malform, None),
    ],
)
def test_kinds_map_to_wire_faults(kind: str, wire_type: type, status: int | None) -> None:
    fault = decide(CompiledRules((Rule(kind),)), 0, "a", LISTINGS, 0, 0.0).fault
    assert fault is not None and isinstance(fault.wire, wire_type) and fault.status is status
    assert fault.replaces_answer == (kind == "timeout")
