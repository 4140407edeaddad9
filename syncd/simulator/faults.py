"""The fault-injection hook: a plan consulted once per partner request.

A later task implements real plans (5xx bursts, 429 storms, resets, truncated bodies);
this module fixes the seam so that the API shells need not change then. A plan is pure:
it sees a ``FaultContext`` and returns a ``Fault`` or None, and the shell applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class FaultContext:
    """What a plan may base its decision on; ``path`` is the route template."""

    account: str | None
    method: str
    path: str
    query: Mapping[str, str]
    now: float


@dataclass(frozen=True, slots=True)
class Fault:
    """Instead of serving: wait ``delay_s``, then answer ``status`` (None = serve normally)."""

    status: int | None = None
    body: bytes = b'{"error":{"code":"INTERNAL_ERROR","message":"Simulated fault"}}'
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class FaultPlan(Protocol):
    def decide(self, ctx: FaultContext) -> Fault | None: ...


class NoFaults:
    """The default plan: every request is served normally."""

    def decide(self, ctx: FaultContext) -> Fault | None:
        return None


NO_FAULTS = NoFaults()
