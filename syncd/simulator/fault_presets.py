"""Ready-made fault specs for the reliability matrix, and the ``--faults`` CLI syntax.

- ``dirty_network(percent)``: RELIABILITY row 6. ``percent`` is the share of faulted
  requests, split across kinds in row 6's proportions 20:10:5:5:2 (5xx, read timeouts,
  RST mid-body, truncated bodies, bad JSON); ``dirty_network(42)`` is row 6 exactly.
- ``storm_429(seconds, then_percent)``: RELIABILITY row 7. Every data API request
  (``@api``: token endpoints have their own caps) answers 429 for ``seconds``, then
  ``then_percent``% do; ``Retry-After`` alternates delta-seconds and HTTP-date.
- ``outage(seconds)``: RELIABILITY row 17. Every request fails for ``seconds``, then
  the partner recovers.

Windows count from the plan's start: the first request it decides, so a plan installed
before the daemon starts is not used up while the daemon boots.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Final

from syncd.simulator.fault_spec import (
    API_PATHS,
    CutParams,
    FaultSpec,
    HangParams,
    LimitParams,
    OutageParams,
    Params,
    RateLimitParams,
    Rule,
    SpecError,
    StatusParams,
)

# RELIABILITY row 6, in percent of all requests.
ROW6_MIX: Final = (
    ("status", 20.0),
    ("timeout", 10.0),
    ("reset", 5.0),
    ("truncated", 5.0),
    ("malformed_json", 2.0),
)
ROW6_PERCENT: Final = sum(share for _, share in ROW6_MIX)

Paths = Sequence[str] | None
Accounts = Sequence[str] | None


def _t(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def dirty_network(
    percent: float = 20.0,
    *,
    timeout_s: float = 60.0,
    paths: Paths = None,
    accounts: Accounts = None,
    seed: int = 0,
) -> FaultSpec:
    """``percent``% of requests faulted, split like RELIABILITY row 6 (see the module doc)."""
    if not 0 <= percent <= 100:
        raise SpecError("percent must be within [0, 100]")
    scale = percent / ROW6_PERCENT / 100
    params: dict[str, Params] = {
        "status": StatusParams(),
        "timeout": HangParams(timeout_s),
        "reset": CutParams(),
        "truncated": CutParams(),
        "malformed_json": CutParams(),
    }
    rules = tuple(
        Rule(kind, share * scale, _t(paths), _t(accounts), params=params[kind]) for kind, share in ROW6_MIX
    )
    return FaultSpec(rules, seed)


def storm_429(
    seconds: float = 60.0,
    then_percent: float = 30.0,
    *,
    retry_after_s: float = 1.0,
    form: str = "alternate",
    paths: Paths = API_PATHS,
    accounts: Accounts = None,
    seed: int = 0,
) -> FaultSpec:
    """100% 429 for ``seconds``, then ``then_percent``% 429 for the rest of the run."""
    if not 0 <= then_percent <= 100:
        raise SpecError("then_percent must be within [0, 100]")
    params = RateLimitParams(retry_after_s, form)
    return FaultSpec(
        (
            Rule("rate_limit", 1.0, _t(paths), _t(accounts), end_s=seconds, params=params),
            Rule("rate_limit", then_percent / 100, _t(paths), _t(accounts), start_s=seconds, params=params),
        ),
        seed,
    )


def outage(
    seconds: float = 120.0,
    *,
    start_s: float = 0.0,
    mode: str = "status",
    statuses: Sequence[int] = (503,),
    paths: Paths = None,
    accounts: Accounts = None,
    seed: int = 0,
) -> FaultSpec:
    """Every matching request fails (5xx, hang or RST by ``mode``) for ``seconds``, then recovers."""
    params = OutageParams(mode, tuple(statuses))
    return FaultSpec(
        (Rule("outage", 1.0, _t(paths), _t(accounts), start_s, start_s + seconds, params=params),), seed
    )


def token_outage(
    seconds: float = 60.0,
    *,
    start_s: float = 0.0,
    mode: str = "status",
    hang_s: float = 60.0,
    accounts: Accounts = None,
    seed: int = 0,
) -> FaultSpec:
    """The token endpoint answers 503 (or hangs ``hang_s``, ``mode="timeout"``) for ``seconds``."""
    params = OutageParams(mode, (503,), hang_s)
    rule = Rule("token_outage", 1.0, None, _t(accounts), start_s, start_s + seconds, params=params)
    return FaultSpec((rule,), seed)


def revoke_tokens(
    *, at_s: float = 0.0, at_request: int = 0, accounts: Accounts = None, seed: int = 0
) -> FaultSpec:
    """Every token of an account stops working at ``at_s`` / its ``at_request``-th request."""
    return FaultSpec(
        (Rule("revoke_tokens", accounts=_t(accounts), start_s=at_s, from_request=at_request),), seed
    )


def tighten_limits(
    factor: float = 0.5,
    *,
    at_s: float = 0.0,
    advertise_documented: bool = True,
    accounts: Accounts = None,
    seed: int = 0,
) -> FaultSpec:
    """From ``at_s`` on, enforce ``factor`` x the limits while (by default) advertising the old ones."""
    rule = Rule(
        "tighten_limits",
        accounts=_t(accounts),
        start_s=at_s,
        params=LimitParams(factor, advertise_documented),
    )
    return FaultSpec((rule,), seed)


# -- the CLI / control-plane syntax: PRESET[:ARG] ---------------------------------------

_PRESETS: Final[dict[str, tuple[Callable[[float], FaultSpec], str]]] = {
    "dirty": (lambda a: dirty_network(a), "percent of requests faulted (default 20)"),
    "storm": (lambda a: storm_429(a), "seconds of 100% 429, then 30% (default 60)"),
    "outage": (lambda a: outage(a), "seconds of 100% 503, then recovery (default 120)"),
    "token-outage": (lambda a: token_outage(a), "seconds of 503 from the token endpoint (default 60)"),
    "revoke": (lambda a: revoke_tokens(at_s=a), "seconds until every token is revoked (default 0)"),
    "tighten": (lambda a: tighten_limits(a), "factor of the limits enforced silently (default 0.5)"),
}
_DEFAULT_ARG: Final = {
    "dirty": 20.0,
    "storm": 60.0,
    "outage": 120.0,
    "token-outage": 60.0,
    "revoke": 0.0,
    "tighten": 0.5,
}
PRESET_HELP: Final = (
    "; ".join(f"{name}[:N] {text}" for name, (_, text) in _PRESETS.items())
    + "; any of them @PARTNER[+PARTNER] applies to those partners only"
)


def from_preset(text: str, seed: int = 0) -> FaultSpec:
    """``dirty:20``, ``storm:60``, ``outage:120``… several joined by ``,`` (e.g. ``storm:60,dirty:5``).

    ``@name`` after one (``storm:60@acme``, ``outage@acme+other``) confines it to those partners.
    """
    spec = FaultSpec((), seed)
    for part in filter(None, (p.strip() for p in text.split(","))):
        part, at, named = part.partition("@")
        partners = tuple(filter(None, (p.strip() for p in named.split("+"))))
        if at and not partners:
            raise SpecError(f"{part}@ names no partner")
        name, sep, arg = part.strip().partition(":")
        if name not in _PRESETS:
            raise SpecError(f"unknown fault preset {name!r}; expected one of {', '.join(_PRESETS)}")
        try:
            value = float(arg) if sep else _DEFAULT_ARG[name]
        except ValueError:
            raise SpecError(f"{name} takes a number, got {arg!r}") from None
        preset = _PRESETS[name][0](value)
        if partners:
            preset = FaultSpec(tuple(dataclasses.replace(r, partners=partners) for r in preset.rules))
        spec = spec + preset
    return spec
