"""Schema drift: a partner field our adapter relies on goes missing, changes type, or
carries an enum value the adapter does not know.

Partners change payloads without notice (the field report's "API changes" lesson); the
first sign is usually one field, on every record. So drift is counted per partner,
resource, field and kind (``syncd_schema_drift_total``) and logged once per process for
each of those, never once per record: a 10,000-record run with a renamed field is one log
line and a counter at 10,000. What happens to the record is the adapter's documented
choice: a missing or retyped field fails the wire decode and the record becomes a dead
letter; an unknown enum value is kept verbatim beside a default (e.g. a reservation
status ``other``), so the record is still stored.

Wire errors are read from msgspec's messages (their format is msgspec's public error text:
"Expected `int`, got `str` - at `$.a.x`", "Object missing required field `x` - at `$.a`");
list indices are dropped from the path so that the label stays low-cardinality.

Adapters are pure functions of a record's bytes; they report an unknown value with
``unknown_value(field, value)``, which reaches the signal the running sync bound with
``bind`` (a context variable: no signal bound, nothing happens).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from syncd.observability.metrics import Metrics

DriftKind = Literal["missing", "type", "unknown_value"]

_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`(?: - at `(?P<at>[^`]+)`)?$")
_TYPE = re.compile(r"^Expected `[^`]+`, got `[^`]+`(?: - at `(?P<at>[^`]+)`)?$")
_INDEX = re.compile(r"\[\d+\]")
# Values an operator sees in the log line, cut: an unknown enum value is partner data.
_MAX_SHOWN = 80


@dataclass(frozen=True)
class Drift:
    field: str
    kind: DriftKind


def wire_drift(exc: BaseException) -> Drift | None:
    """The field and kind a wire decoding error names, or None for any other error."""
    if not isinstance(exc, msgspec.ValidationError):
        return None
    message = str(exc)
    missing = _MISSING.match(message)
    if missing is not None:
        parent = _path(missing.group("at"))
        name = missing.group("name")
        return Drift(f"{parent}.{name}" if parent else name, "missing")
    retyped = _TYPE.match(message)
    if retyped is not None:
        return Drift(_path(retyped.group("at")) or "$", "type")
    return None


def _path(at: str | None) -> str:
    """``$.l[3].x`` -> ``l[].x``: the record's field, whichever element held it."""
    if not at:
        return ""
    return _INDEX.sub("[]", at).removeprefix("$").removeprefix(".")


@dataclass
class DriftSignal:
    """Counts drift and logs each (partner, resource, field, kind) once per process."""

    metrics: Metrics
    log: Any
    _logged: set[tuple[str, str, str, str]] = field(default_factory=set)

    def report(self, partner: str, resource: str, drift: Drift, example: object = None) -> None:
        self.metrics.schema_drift.labels(partner, resource, drift.field, drift.kind).inc()
        key = (partner, resource, drift.field, drift.kind)
        if key in self._logged:
            return
        self._logged.add(key)
        shown = None if example is None else str(example)[:_MAX_SHOWN]
        self.log.warning(
            "schema_drift",
            partner=partner,
            resource=resource,
            field=drift.field,
            kind=drift.kind,
            example=shown,
        )

    def wire_error(self, partner: str, resource: str, exc: BaseException) -> None:
        drift = wire_drift(exc)
        if drift is not None:
            self.report(partner, resource, drift)


_SIGNALS: weakref.WeakKeyDictionary[Metrics, DriftSignal] = weakref.WeakKeyDictionary()


def signal_for(metrics: Metrics, log: Any) -> DriftSignal:
    """The process's signal for ``metrics`` (one per daemon, so each field logs once)."""
    signal = _SIGNALS.get(metrics)
    if signal is None:
        signal = _SIGNALS[metrics] = DriftSignal(metrics, log)
    return signal


@dataclass(frozen=True)
class _Bound:
    signal: DriftSignal
    partner: str
    resource: str


_current: ContextVar[_Bound | None] = ContextVar("syncd_drift", default=None)


@contextmanager
def bind(signal: DriftSignal, partner: str, resource: str) -> Iterator[None]:
    """Route ``unknown_value`` calls made in this context (and tasks it starts) to ``signal``."""
    token = _current.set(_Bound(signal, partner, resource))
    try:
        yield
    finally:
        _current.reset(token)


def unknown_value(field_name: str, value: object) -> None:
    """An adapter met a value of ``field_name`` outside the set it maps (and defaulted it)."""
    bound = _current.get()
    if bound is not None:
        bound.signal.report(bound.partner, bound.resource, Drift(field_name, "unknown_value"), value)
