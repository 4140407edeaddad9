"""The fault-injection hook: a plan consulted once per partner request.

A plan is pure as far as the API shell is concerned: it sees a ``FaultContext`` and
returns a ``Fault`` or None, and the shell (``gateway`` + ``fault_wire``) carries it
out. ``fault_plan.SeededFaultPlan`` is the real plan (declarative rules + a seed);
anything with a ``decide`` method works, which keeps hand-written test plans one class.

A ``Fault`` describes what the client experiences, in three independent parts:

- side effects on the partner's state, applied before authentication so that the very
  request that triggers them already sees them (``revoke_tokens``, ``limits``);
- a replacement answer instead of serving (``status``/``body``/``headers``, with an
  optional ``Retry-After``), or a ``Hang`` / head-less ``Reset`` of the connection;
- damage to the bytes of whatever answer goes out (``Reset`` mid-body, ``Truncate``,
  ``Malform``, ``Trickle``): the wire-level faults a real network produces.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

# "token": a credential exchange (fault paths ``@token``); "api": everything else (``@api``).
Role = Literal["token", "api"]


@dataclass(frozen=True, slots=True)
class FaultContext:
    """What a plan may base its decision on; ``path`` is the route template below the
    partner's prefix (``/v1/listings/{id}``), ``partner`` the profile's name."""

    account: str | None
    method: str
    path: str
    query: Mapping[str, str]
    now: float
    partner: str = ""
    role: Role = "api"


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: hold the connection ``seconds`` (or until the client leaves), then drop it."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Reset:
    """Abort the connection with a TCP RST after sending ``fraction`` of the body.

    ``fraction=None`` resets before a single byte of the answer (a dead gateway).
    """

    fraction: float | None


@dataclass(frozen=True, slots=True)
class Truncate:
    """Send the full ``Content-Length`` but only ``fraction`` of the body, then close (FIN)."""

    fraction: float


@dataclass(frozen=True, slots=True)
class Malform:
    """Cut the body at ``fraction`` and send it complete and well-framed: valid HTTP, broken JSON."""

    fraction: float


@dataclass(frozen=True, slots=True)
class Trickle:
    """Send the body in ``chunks`` pieces spread over ``seconds``; it still arrives whole."""

    seconds: float
    chunks: int


WireFault = Hang | Reset | Truncate | Malform | Trickle


@dataclass(frozen=True, slots=True)
class LimitChange:
    """Tighten (or relax) the account's enforced limits from now on, possibly without telling."""

    factor: float
    advertise_documented: bool


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request; the default (``Fault()``) serves it normally.

    ``status`` replaces the answer, with ``body`` or (None) the partner's own error
    envelope around ``message``; ``delay_s`` waits first; ``wire`` damages the bytes;
    ``kind`` is the marker the request log keeps. ``retry_after_s`` adds a ``Retry-After``
    header to the replacement answer, as an HTTP-date when ``retry_after_date``.
    """

    status: int | None = None
    body: bytes | None = None
    message: str = "Simulated fault"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    kind: str = "custom"
    wire: WireFault | None = None
    retry_after_s: float | None = None
    retry_after_date: bool = False
    revoke_tokens: bool = False
    limits: LimitChange | None = None

    @property
    def replaces_answer(self) -> bool:
        """True when the handler must not run (nor the rate limiter count the request)."""
        return (
            self.status is not None
            or isinstance(self.wire, Hang)
            or (isinstance(self.wire, Reset) and self.wire.fraction is None)
        )

    def retry_after_header(self, wall_now: float) -> str | None:
        """The ``Retry-After`` value promised at ``wall_now``; never earlier than promised.

        An HTTP-date has whole-second resolution, so it is rounded up: a client that waits
        until the date has always waited at least ``retry_after_s``.
        """
        if self.retry_after_s is None:
            return None
        if self.retry_after_date:
            return email.utils.formatdate(math.ceil(wall_now + self.retry_after_s), usegmt=True)
        return str(max(1, math.ceil(self.retry_after_s)))


class FaultPlan(Protocol):
    def decide(self, ctx: FaultContext) -> Fault | None: ...


class NoFaults:
    """The default plan: every request is served normally (the shell skips it by identity)."""

    def decide(self, ctx: FaultContext) -> Fault | None:
        return None


NO_FAULTS = NoFaults()
