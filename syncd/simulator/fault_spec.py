"""The declarative fault spec: a seed plus an ordered list of rules, JSON in and out.

A spec is data, not code, so the same faults can come from a test, from
``POST /_sim/faults`` or from ``--faults``, and a failing run can be replayed from its
printed spec. Each rule names a kind, where it applies (partners, path templates below
the partner's prefix, accounts), when
(a time window in seconds since the plan started and/or a range of the account's request
counter, 0-based) and how often (``probability``); its ``params`` are typed per kind.

Example (JSON)::

    {"seed": 7, "rules": [
      {"kind": "status", "probability": 0.2, "partners": ["acme"], "paths": ["/v1/*"],
       "params": {"statuses": [503]}},
      {"kind": "revoke_tokens", "accounts": ["acme-acct-1"], "from_request": 50},
      {"kind": "outage", "start_s": 10, "end_s": 130}
    ]}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

Kind = Literal[
    "status",
    "timeout",
    "reset",
    "truncated",
    "malformed_json",
    "slow_body",
    "rate_limit",
    "tighten_limits",
    "revoke_tokens",
    "token_outage",
    "outage",
]
KINDS: Final[tuple[str, ...]] = get_args(Kind)
# One-shot kinds change the partner's state once per account instead of shaping answers.
EVENT_KINDS: Final = frozenset({"revoke_tokens", "tighten_limits"})
# Path patterns naming a route's role rather than its path: every profile's credential
# exchange (where ``token_outage`` applies when a rule names no paths), and its data API
# (what documented rate limits, and so 429 storms, cover).
TOKEN_PATHS: Final = ("@token",)
API_PATHS: Final = ("@api",)


class SpecError(ValueError):
    """The fault spec is not valid."""


@dataclass(frozen=True, slots=True)
class StatusParams:
    """``status``: one of ``statuses`` (drawn per request) with a JSON error body."""

    statuses: tuple[int, ...] = (500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class HangParams:
    """``timeout``: hold the request ``seconds`` without answering, then drop the connection."""

    seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class CutParams:
    """``reset``/``truncated``/``malformed_json``: the share of the body sent, drawn in a range."""

    min_fraction: float = 0.1
    max_fraction: float = 0.9


@dataclass(frozen=True, slots=True)
class SlowParams:
    """``slow_body``: the body in ``chunks`` pieces over ``seconds`` (keep it below client timeouts)."""

    seconds: float = 2.0
    chunks: int = 20


@dataclass(frozen=True, slots=True)
class RateLimitParams:
    """``rate_limit``: 429 with ``Retry-After``; ``form`` alternates by request parity by default."""

    retry_after_s: float = 1.0
    form: str = "alternate"  # "alternate" | "delta" | "date"


@dataclass(frozen=True, slots=True)
class LimitParams:
    """``tighten_limits``: enforce ``factor`` x the documented limits from the trigger on."""

    factor: float = 0.5
    advertise_documented: bool = True


@dataclass(frozen=True, slots=True)
class NoParams:
    """``revoke_tokens``: every token of the account stops working; nothing to tune."""


@dataclass(frozen=True, slots=True)
class OutageParams:
    """``outage``/``token_outage``: answer 5xx (``status``), hang (``timeout``) or RST (``reset``)."""

    mode: str = "status"  # "status" | "timeout" | "reset"
    statuses: tuple[int, ...] = (503,)
    seconds: float = 60.0


Params = (
    StatusParams
    | HangParams
    | CutParams
    | SlowParams
    | RateLimitParams
    | LimitParams
    | NoParams
    | OutageParams
)

PARAMS_OF: Final[Mapping[str, type[Params]]] = {
    "status": StatusParams,
    "timeout": HangParams,
    "reset": CutParams,
    "truncated": CutParams,
    "malformed_json": CutParams,
    "slow_body": SlowParams,
    "rate_limit": RateLimitParams,
    "tighten_limits": LimitParams,
    "revoke_tokens": NoParams,
    "token_outage": OutageParams,
    "outage": OutageParams,
}
_CHOICES: Final = {"form": ("alternate", "delta", "date"), "mode": ("status", "timeout", "reset")}


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of the spec; ``None`` partners/paths/accounts/ends mean "any" / "open-ended".

    ``partners`` are profile names. ``paths`` are route templates below the partner's
    prefix (``/v1/listings/{id}``), shell-style patterns (``/v1/*``), or a role:
    ``@token`` (credential exchanges) or ``@api`` (everything else). Windows are
    half-open: ``start_s <= elapsed < end_s`` and ``from_request <= n < to_request``
    where ``n`` counts the account's earlier requests.
    """

    kind: str
    probability: float = 1.0
    paths: tuple[str, ...] | None = None
    accounts: tuple[str, ...] | None = None
    start_s: float = 0.0
    end_s: float | None = None
    from_request: int = 0
    to_request: int | None = None
    params: Params | None = field(default=None)
    partners: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        expected = PARAMS_OF[self.kind]
        if self.params is None:
            object.__setattr__(self, "params", expected())
        elif not isinstance(self.params, expected):
            raise SpecError(f"{self.kind} takes {expected.__name__}, not {type(self.params).__name__}")
        if self.kind == "token_outage" and self.paths is None:
            object.__setattr__(self, "paths", TOKEN_PATHS)
        _validate(self)

    @property
    def is_event(self) -> bool:
        return self.kind in EVENT_KINDS

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "probability": self.probability}
        for name in ("partners", "paths", "accounts"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        out |= {"start_s": self.start_s, "end_s": self.end_s}
        out |= {"from_request": self.from_request, "to_request": self.to_request}
        out["params"] = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(cast("Any", self.params)).items()
        }
        return out


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Rules in priority order plus the seed every random draw derives from."""

    rules: tuple[Rule, ...] = ()
    seed: int = 0

    def to_json(self) -> dict[str, object]:
        return {"seed": self.seed, "rules": [r.to_json() for r in self.rules]}

    def with_seed(self, seed: int) -> FaultSpec:
        return FaultSpec(self.rules, seed)

    def __add__(self, other: FaultSpec) -> FaultSpec:
        """Both rule lists, ``self``'s first (it wins ties); keeps ``self``'s seed."""
        return FaultSpec(self.rules + other.rules, self.seed)


def _validate(rule: Rule) -> None:
    if not 0.0 <= rule.probability <= 1.0:
        raise SpecError("probability must be within [0, 1]")
    if rule.is_event and rule.probability != 1.0:
        raise SpecError(f"{rule.kind} is a one-shot event: it takes no probability")
    if rule.start_s < 0 or (rule.end_s is not None and rule.end_s < rule.start_s):
        raise SpecError("the window needs 0 <= start_s <= end_s")
    if rule.from_request < 0 or (rule.to_request is not None and rule.to_request < rule.from_request):
        raise SpecError("the request range needs 0 <= from_request <= to_request")
    p = rule.params
    if isinstance(p, StatusParams | OutageParams) and (
        not p.statuses or any(not 100 <= s <= 599 for s in p.statuses)
    ):
        raise SpecError("statuses must be a non-empty list of HTTP status codes")
    if isinstance(p, CutParams) and not 0.0 <= p.min_fraction <= p.max_fraction <= 1.0:
        raise SpecError("fractions need 0 <= min_fraction <= max_fraction <= 1")
    if isinstance(p, SlowParams) and (p.seconds < 0 or p.chunks < 1):
        raise SpecError("slow_body needs seconds >= 0 and chunks >= 1")
    if isinstance(p, HangParams | OutageParams) and p.seconds < 0:
        raise SpecError("seconds must be >= 0")
    if isinstance(p, RateLimitParams) and p.retry_after_s < 0:
        raise SpecError("retry_after_s must be >= 0")
    if isinstance(p, LimitParams) and not (p.factor > 0 and math.isfinite(p.factor)):
        raise SpecError("factor must be > 0")
    for name, allowed in _CHOICES.items():
        value = getattr(p, name, None)
        if value is not None and value not in allowed:
            raise SpecError(f"{name} must be one of {', '.join(allowed)}")


# -- JSON -------------------------------------------------------------------------------


def _number(data: Mapping[str, object], key: str, default: float | None) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{key!r} must be a number")
    return float(value)


def _integer(data: Mapping[str, object], key: str, default: int | None) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{key!r} must be an integer")
    return value


def _strings(data: Mapping[str, object], key: str) -> tuple[str, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{key!r} must be a list of strings")
    return tuple(cast("list[str]", value))


def _params(kind: str, raw: object) -> Params:
    cls = PARAMS_OF[kind]
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise SpecError("'params' must be an object")
    data = cast("dict[str, object]", raw)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise SpecError(f"{kind} does not take {', '.join(sorted(unknown))}")
    values: dict[str, object] = {}
    for name, value in data.items():
        default = known[name].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SpecError(f"{name!r} must be a boolean")
        elif isinstance(default, int):
            value = _integer(data, name, None)
        elif isinstance(default, float):
            value = _number(data, name, None)
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise SpecError(f"{name!r} must be a string")
        elif isinstance(default, tuple):
            if isinstance(value, int) and not isinstance(value, bool):
                value = [value]
            if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise SpecError(f"{name!r} must be a list of integers")
            value = tuple(cast("list[int]", value))
        values[name] = value
    return cls(**cast("dict[str, Any]", values))


def rule_from_json(raw: object) -> Rule:
    if not isinstance(raw, dict):
        raise SpecError("each rule must be an object")
    data = cast("dict[str, object]", raw)
    unknown = set(data) - {f.name for f in dataclasses.fields(Rule)}
    if unknown:
        raise SpecError(f"unknown rule fields: {', '.join(sorted(unknown))}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise SpecError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
    return Rule(
        kind,
        probability=cast("float", _number(data, "probability", 1.0)),
        paths=_strings(data, "paths"),
        accounts=_strings(data, "accounts"),
        start_s=cast("float", _number(data, "start_s", 0.0)),
        end_s=_number(data, "end_s", None),
        from_request=cast("int", _integer(data, "from_request", 0)),
        to_request=_integer(data, "to_request", None),
        params=_params(kind, data.get("params")),
        partners=_strings(data, "partners"),
    )


def spec_from_json(raw: object, *, default_seed: int = 0) -> FaultSpec:
    """A spec from ``{"seed": N, "rules": [...]}`` (or a bare list of rules)."""
    if isinstance(raw, list):
        raw = {"rules": raw}
    if not isinstance(raw, dict):
        raise SpecError("a fault spec is an object with 'rules' (and optionally 'seed')")
    data = cast("dict[str, object]", raw)
    unknown = set(data) - {"seed", "rules"}
    if unknown:
        raise SpecError(f"unknown spec fields: {', '.join(sorted(unknown))}")
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise SpecError("'rules' must be a list")
    seed = _integer(data, "seed", default_seed)
    return FaultSpec(tuple(rule_from_json(r) for r in cast("Sequence[object]", rules)), seed or 0)
