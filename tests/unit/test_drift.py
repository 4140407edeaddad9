"""Schema drift is counted per field and logged once per field, whatever the record count."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from syncd.observability import drift
from syncd.observability.metrics import Metrics


class Address(msgspec.Struct):
    city: str | None = None


class Listing(msgspec.Struct):
    id: str
    accommodates: int | None = None
    address: Address | None = None
    rooms: list[Address] = []


class Lines:
    """A structlog-shaped logger that keeps its calls."""

    def __init__(self) -> None:
        self.warnings: list[dict[str, Any]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings.append({"event": event, **fields})


def failure(document: bytes) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(document, type=Listing)
    return caught.value


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"{}", drift.Drift("id", "missing")),
        (b'{"id": 7}', drift.Drift("id", "type")),
        (b'{"id": "a", "address": {"city": 3}}', drift.Drift("address.city", "type")),
        (b'{"id": "a", "rooms": [{}, {"city": false}]}', drift.Drift("rooms[].city", "type")),
        (b"[1]", drift.Drift("$", "type")),
    ],
)
def test_wire_errors_name_the_field_without_list_positions(document: bytes, expected: drift.Drift) -> None:
    assert drift.wire_drift(failure(document)) == expected


def test_errors_that_are_not_wire_errors_are_not_drift() -> None:
    assert drift.wire_drift(ValueError("Expected `int`, got `str`")) is None
    with pytest.raises(msgspec.DecodeError) as caught:
        msgspec.json.decode(b"{", type=Listing)
    assert drift.wire_drift(caught.value) is None


def test_ten_thousand_records_with_one_retyped_field_are_one_log_line_and_a_count() -> None:
    metrics, log = Metrics(), Lines()
    signal = drift.DriftSignal(metrics, log)
    for _ in range(10_000):
        signal.wire_error("acme", "properties", failure(b'{"id": "a", "accommodates": "4"}'))
    signal.wire_error("acme", "reservations", failure(b'{"id": "a", "accommodates": "4"}'))
    value = metrics.registry.get_sample_value(
        "syncd_schema_drift_total",
        {"partner": "acme", "resource": "properties", "field": "accommodates", "kind": "type"},
    )
    assert value == 10_000
    assert [(w["resource"], w["field"], w["kind"]) for w in log.warnings] == [
        ("properties", "accommodates", "type"),
        ("reservations", "accommodates", "type"),
    ]


def test_unknown_values_reach_the_bound_signal_only() -> None:
    metrics, log = Metrics(), Lines()
    signal = drift.DriftSignal(metrics, log)
    drift.unknown_value("status", "teleported")  # nothing bound: ignored
    with drift.bind(signal, "acme", "reservations"):
        drift.unknown_value("status", "teleported")
        drift.unknown_value("status", "x" * 500)
    drift.unknown_value("status", "teleported")
    labels = {"partner": "acme", "resource": "reservations", "field": "status", "kind": "unknown_value"}
    assert metrics.registry.get_sample_value("syncd_schema_drift_total", labels) == 2
    assert len(log.warnings) == 1
    assert log.warnings[0]["example"] == "teleported"
