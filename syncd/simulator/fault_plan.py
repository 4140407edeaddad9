"""Which request gets which fault: a pure function of (rules, seed, account, path, n, elapsed).

Determinism is the point: a failing seed must reproduce. Every random choice is a hash of
``(seed, account, n, salt)`` where ``n`` is the account's 0-based request counter, so the
answer does not depend on timing, on other accounts' traffic or on Python's hash seed.

Probabilistic rules stack on one draw per request: walking the rules that apply, in
order, rule *i* fires when ``sum(p_1..p_{i-1}) <= u < sum(p_1..p_i)``. So a 20% / 10% / 5%
mix really is 20% / 10% / 5% (not 20% then 10% of the remainder), kinds never overlap,
and a rule with probability 1 shadows every later one for as long as it applies.

One-shot rules (``revoke_tokens``, ``tighten_limits``) fire once per account, on that
account's first request that matches their filters inside their window; they do not
consume the draw and can coincide with a probabilistic fault.

``SeededFaultPlan`` is the thin stateful shell the server consults: it keeps the
per-account counters, the set of fired one-shots and the plan's start time (the first
request it sees, unless ``start`` anchored it), and delegates to ``decide``.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Set
from dataclasses import dataclass, field

from syncd.simulator.fault_spec import (
    CutParams,
    FaultSpec,
    HangParams,
    LimitParams,
    OutageParams,
    RateLimitParams,
    Rule,
    SlowParams,
    StatusParams,
)
from syncd.simulator.faults import (
    Fault,
    FaultContext,
    Hang,
    LimitChange,
    Malform,
    Reset,
    Role,
    Trickle,
    Truncate,
    WireFault,
)

# Salts keep the draws of one request independent of each other.
_PICK, _STATUS, _CUT = 0, 1, 2


def unit(seed: int, account: str | None, n: int, salt: int) -> float:
    """A uniform draw in [0, 1) fixed by its arguments."""
    key = f"{seed}\x1f{'' if account is None else '=' + account}\x1f{n}\x1f{salt}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


class CompiledRules:
    """The rules of a spec with their route filters memoised (routes are few).

    A route is (partner, path template below its prefix, role); the patterns ``@token``
    and ``@api`` match a role instead of a path (see ``fault_spec``).
    """

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._routes: list[dict[tuple[str, str], bool]] = [{} for _ in rules]

    def applies(self, i: int, account: str | None, path: str, partner: str = "", role: Role = "api") -> bool:
        rule = self.rules[i]
        if rule.accounts is not None and account not in rule.accounts:
            return False
        if rule.paths is None and rule.partners is None:
            return True
        cache = self._routes[i]
        key = (partner, path)
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = _route_matches(rule, path, partner, role)
        return hit


def _route_matches(rule: Rule, path: str, partner: str, role: Role) -> bool:
    if rule.partners is not None and partner not in rule.partners:
        return False
    return rule.paths is None or any(
        pattern == f"@{role}" or fnmatch.fnmatchcase(path, pattern) for pattern in rule.paths
    )


def in_window(rule: Rule, n: int, elapsed_s: float) -> bool:
    return (
        rule.start_s <= elapsed_s
        and (rule.end_s is None or elapsed_s < rule.end_s)
        and rule.from_request <= n
        and (rule.to_request is None or n < rule.to_request)
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one request: the fault (None = serve) and the one-shots it fired."""

    fault: Fault | None
    fired: tuple[int, ...] = field(default=())


def decide(
    rules: CompiledRules,
    seed: int,
    account: str | None,
    path: str,
    n: int,
    elapsed_s: float,
    fired: Set[int] = frozenset(),
    partner: str = "",
    role: Role = "api",
) -> Verdict:
    """Pure: the same arguments give the same verdict, whatever happened before."""
    events: list[int] = []
    chosen: Rule | None = None
    draw: float | None = None
    cumulative = 0.0
    for i, rule in enumerate(rules.rules):
        if not in_window(rule, n, elapsed_s) or not rules.applies(i, account, path, partner, role):
            continue
        if rule.is_event:
            if i not in fired:
                events.append(i)
            continue
        if chosen is not None or rule.probability <= 0.0:
            continue
        if draw is None:
            draw = unit(seed, account, n, _PICK)
        cumulative += rule.probability
        if draw < cumulative:
            chosen = rule
    if chosen is None and not events:
        return Verdict(None)
    return Verdict(_build(chosen, [rules.rules[i] for i in events], seed, account, n), tuple(events))


def _build(chosen: Rule | None, events: list[Rule], seed: int, account: str | None, n: int) -> Fault:
    kinds = [r.kind for r in events] + ([chosen.kind] if chosen is not None else [])
    limits: LimitChange | None = None
    for rule in events:
        if isinstance(rule.params, LimitParams):
            limits = LimitChange(rule.params.factor, rule.params.advertise_documented)
    revoke = any(r.kind == "revoke_tokens" for r in events)
    status: int | None = None
    message = "Simulated fault"
    wire: WireFault | None = None
    retry_after_s: float | None = None
    as_date = False
    p = chosen.params if chosen is not None else None
    outage_mode = p.mode if isinstance(p, OutageParams) else "status"
    if isinstance(p, StatusParams | OutageParams) and outage_mode == "status":
        statuses = p.statuses
        status = statuses[min(len(statuses) - 1, int(unit(seed, account, n, _STATUS) * len(statuses)))]
        if isinstance(p, OutageParams):
            message = "Simulated outage"
    elif isinstance(p, OutageParams):
        wire = Hang(p.seconds) if p.mode == "timeout" else Reset(None)
    elif isinstance(p, RateLimitParams):
        status, message, retry_after_s = 429, "Rate limit exceeded", p.retry_after_s
        as_date = p.form == "date" or (p.form == "alternate" and n % 2 == 1)
    elif isinstance(p, HangParams):
        wire = Hang(p.seconds)
    elif isinstance(p, SlowParams):
        wire = Trickle(p.seconds, p.chunks)
    elif isinstance(p, CutParams) and chosen is not None:
        fraction = p.min_fraction + (p.max_fraction - p.min_fraction) * unit(seed, account, n, _CUT)
        if chosen.kind == "reset":
            wire = Reset(fraction)
        elif chosen.kind == "truncated":
            wire = Truncate(fraction)
        else:
            wire = Malform(fraction)
    return Fault(
        status=status,
        message=message,
        kind="+".join(kinds),
        wire=wire,
        retry_after_s=retry_after_s,
        retry_after_date=as_date,
        revoke_tokens=revoke,
        limits=limits,
    )


class SeededFaultPlan:
    """The ``FaultPlan`` the server consults: a ``FaultSpec`` plus its running state."""

    def __init__(self, spec: FaultSpec, *, started_at: float | None = None) -> None:
        self.spec = spec
        self.started_at = started_at
        self._rules = CompiledRules(spec.rules)
        self._counters: dict[str | None, int] = {}
        self._fired: dict[str | None, set[int]] = {}

    def start(self, now: float) -> None:
        """Anchor the windows at ``now`` (otherwise at the first request decided)."""
        self.started_at = now

    def requests_seen(self, account: str | None) -> int:
        return self._counters.get(account, 0)

    def decide(self, ctx: FaultContext) -> Fault | None:
        if self.started_at is None:
            self.started_at = ctx.now
        n = self._counters.get(ctx.account, 0)
        self._counters[ctx.account] = n + 1
        fired = self._fired.setdefault(ctx.account, set())
        verdict = decide(
            self._rules,
            self.spec.seed,
            ctx.account,
            ctx.path,
            n,
            ctx.now - self.started_at,
            fired,
            ctx.partner,
            ctx.role,
        )
        fired.update(verdict.fired)
        return verdict.fault

    def to_json(self, now: float) -> dict[str, object]:
        return self.spec.to_json() | {
            "elapsed_s": None if self.started_at is None else now - self.started_at,
            "requests": {str(k): v for k, v in self._counters.items()},
        }
