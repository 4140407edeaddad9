"""Circuit breakers: pure state machines on an injected ``now``.

    closed ──(≥ threshold transient failures, ≥ ratio of calls, within window)──> open
    open ──(cool-down elapsed)──> half_open: at most ``half_open_probes`` requests, each
    half_open ──(a probe succeeds)──> closed      bounded by ``probe_timeout_s``
    half_open ──(a probe fails or overruns its timeout)──> open (a new cool-down)

Only transient failures (5xx, timeouts, resets, undecodable bodies) count. Any other
answer (4xx, 429, auth) shows the partner is reachable and counts as a success. A probe
that never reports (its task was cancelled, it hangs) is failed once its timeout passes,
so a breaker cannot stick in half-open (resilience4j#903). The client applies the same
timeout to the probe request itself.

One ``Breakers`` guards a request with its integration's breaker and its partner's
(shared by every integration of the partner in this process): both must admit it.
Our own small module: none of our dependencies has a breaker, and pybreaker (the usual
choice) counts consecutive failures rather than a windowed rate, reads the wall clock
inside, wraps sync or tornado calls, and bounds neither half-open probes nor their time.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from syncd import errors

DEFAULT_FAILURE_THRESHOLD = 10
DEFAULT_FAILURE_RATIO = 0.6
DEFAULT_WINDOW_S = 60.0
DEFAULT_COOLDOWN_S = 30.0
DEFAULT_HALF_OPEN_PROBES = 1
DEFAULT_PROBE_TIMEOUT_S = 15.0
_WINDOW_SLOTS = 10


class State(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """Trip on ``failure_threshold`` failures that are at least ``failure_ratio`` of the
    calls within ``window_s`` (the ratio keeps a busy partner with sporadic errors closed;
    the retries absorb those)."""

    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    failure_ratio: float = DEFAULT_FAILURE_RATIO
    window_s: float = DEFAULT_WINDOW_S
    cooldown_s: float = DEFAULT_COOLDOWN_S
    half_open_probes: int = DEFAULT_HALF_OPEN_PROBES
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Permit:
    """One admitted request; ``generation`` ties its outcome to the state that admitted it."""

    breaker: CircuitBreaker
    generation: int
    probe: bool
    ident: int


class _Window:
    """Failures and calls over the last ``span_s`` in fixed slots (bounded memory)."""

    __slots__ = ("_slots", "_width")

    def __init__(self, span_s: float) -> None:
        self._width = span_s / _WINDOW_SLOTS
        # [slot index, failures, calls]; a stale index means the slot is empty.
        self._slots = [[-1, 0, 0] for _ in range(_WINDOW_SLOTS)]

    def add(self, now: float, failed: bool) -> None:
        index = math.floor(now / self._width)
        slot = self._slots[index % _WINDOW_SLOTS]
        if slot[0] != index:
            slot[:] = [index, 0, 0]
        slot[1] += failed
        slot[2] += 1

    def totals(self, now: float) -> tuple[int, int]:
        index = math.floor(now / self._width)
        live = [s for s in self._slots if index - _WINDOW_SLOTS < s[0] <= index]
        return sum(s[1] for s in live), sum(s[2] for s in live)

    def clear(self) -> None:
        for slot in self._slots:
            slot[:] = [-1, 0, 0]


Listener = Callable[["CircuitBreaker", State, State], None]


@dataclass(eq=False)
class CircuitBreaker:
    """One breaker; ``name`` says what it guards (for errors and logs)."""

    name: str
    policy: BreakerPolicy = BreakerPolicy()
    on_change: Listener | None = None
    state: State = State.CLOSED
    opened_at: float = -math.inf
    _generation: int = 0
    _next_ident: int = 0
    _probes: dict[int, float] = field(default_factory=dict)  # ident -> admitted at
    _window: _Window = field(init=False)

    def __post_init__(self) -> None:
        self._window = _Window(self.policy.window_s)

    # --- reading --------------------------------------------------------------------

    def current(self, now: float) -> State:
        """The state at ``now`` (applies the cool-down and probe timeouts first)."""
        self._tick(now)
        return self.state

    def retry_in(self, now: float) -> float:
        """Seconds until this breaker may admit a request (0: it would now)."""
        self._tick(now)
        if self.state is State.OPEN:
            return max(0.0, self.opened_at + self.policy.cooldown_s - now)
        if self.state is State.HALF_OPEN and len(self._probes) >= self.policy.half_open_probes:
            # A slot frees when the earliest probe reports or overruns.
            return max(0.0, min(self._probes.values()) + self.policy.probe_timeout_s - now)
        return 0.0

    # --- a request's life -----------------------------------------------------------

    def admit(self, now: float) -> Permit | None:
        self._tick(now)
        if self.state is State.CLOSED:
            return Permit(self, self._generation, False, 0)
        if self.state is State.HALF_OPEN and len(self._probes) < self.policy.half_open_probes:
            self._next_ident += 1
            self._probes[self._next_ident] = now
            return Permit(self, self._generation, True, self._next_ident)
        return None

    def record(self, permit: Permit, ok: bool, now: float) -> None:
        """The outcome of an admitted request: ``ok`` unless it failed transiently."""
        self._tick(now)
        if permit.generation != self._generation:
            return  # admitted under an earlier state: that state has been decided already
        if permit.probe:
            if self._probes.pop(permit.ident, None) is None:
                return  # already failed by its timeout
            if ok:
                self._transition(State.CLOSED, now)
            else:
                self._transition(State.OPEN, now)
            return
        self._window.add(now, not ok)
        if not ok:
            failures, calls = self._window.totals(now)
            if failures >= self.policy.failure_threshold and failures >= self.policy.failure_ratio * calls:
                self._transition(State.OPEN, now)

    def release(self, permit: Permit) -> None:
        """The request ended without an outcome (cancelled): free its probe slot."""
        if permit.probe and permit.generation == self._generation:
            self._probes.pop(permit.ident, None)

    # --- internals ------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        if self.state is State.OPEN and now >= self.opened_at + self.policy.cooldown_s:
            self._transition(State.HALF_OPEN, now)
        elif self.state is State.HALF_OPEN and self._probes:
            if min(self._probes.values()) + self.policy.probe_timeout_s <= now:
                self._transition(State.OPEN, now)

    def _transition(self, to: State, now: float) -> None:
        before = self.state
        self.state = to
        self._generation += 1
        self._probes.clear()
        if to is State.OPEN:
            self.opened_at = now
        if to is State.CLOSED:
            self._window.clear()
        if self.on_change is not None and before is not to:
            self.on_change(self, before, to)


def reschedule_delay(retry_in: float, rand: float) -> float:
    """When a sync that failed fast should run again: once the breaker admits a probe
    (at least a second later, so a breaker in half-open never makes it spin), with jitter
    (``rand`` in [0, 1)) so that an integration's resources do not all return at once."""
    return max(1.0, retry_in) * (1.0 + 0.2 * rand)


class Breakers:
    """The breakers one request must pass (partner-wide first, then the integration's)."""

    def __init__(self, breakers: Sequence[CircuitBreaker]) -> None:
        self.breakers = tuple(breakers)

    def check(self, now: float) -> None:
        """Fail fast, before waiting for rate budget, if a breaker would refuse now."""
        for b in self.breakers:
            if (wait := b.retry_in(now)) > 0:
                raise errors.CircuitOpen(f"circuit {b.name} is {b.state.value}", retry_in=wait)

    def admit(self, now: float) -> tuple[Permit, ...]:
        """Permits from every breaker, or ``CircuitOpen`` (releasing those already taken)."""
        permits: list[Permit] = []
        for b in self.breakers:
            permit = b.admit(now)
            if permit is None:
                for taken in permits:
                    taken.breaker.release(taken)
                wait = b.retry_in(now)
                raise errors.CircuitOpen(f"circuit {b.name} is {b.state.value}", retry_in=wait)
            permits.append(permit)
        return tuple(permits)

    @staticmethod
    def probe_timeout(permits: Sequence[Permit]) -> float | None:
        timeouts = [p.breaker.policy.probe_timeout_s for p in permits if p.probe]
        return min(timeouts) if timeouts else None

    @staticmethod
    def record(permits: Sequence[Permit], ok: bool, now: float) -> None:
        for p in permits:
            p.breaker.record(p, ok, now)

    @staticmethod
    def release(permits: Sequence[Permit]) -> None:
        for p in permits:
            p.breaker.release(p)
