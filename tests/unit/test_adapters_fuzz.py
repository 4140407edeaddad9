"""Every partner's adapter, fed payloads a hostile or drifting partner could send: valid
records from its simulator profile with fields retyped, removed or added, and arbitrary
bytes. An adapter either produces canonical values or raises one of the errors the
pipeline turns into a dead letter (``RECORD_ERRORS``); it never crashes the run, and it
can always name the record (or say it cannot) for that dead letter.

Partner-neutral: every partner with a connector and a simulator profile is fuzzed.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.config import parse_settings
from syncd.connectors import registry
from syncd.connectors.base import Connector
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.pipeline import RECORD_ERRORS
from syncd.simulator.profile import DatasetOptions, discover
from syncd.simulator.server import Simulator
from syncd.store.resources import RESOURCES

CASES = sorted(
    (partner, version, resource)
    for partner in set(discover()) & set(registry.partners())
    for version in registry.partners()[partner].versions
    for resource in registry.partners()[partner].resources
    # A child resource's records are normalized with their parent's context, by the
    # connector's stream_children (tested with it), not by ``normalizer``.
    if resource in RESOURCES and RESOURCES[resource].cascade is None
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _dumps(value: Any) -> bytes:
    """JSON as a partner may send it: stdlib's encoder also writes integers past 64 bits."""
    return json.dumps(value).encode()


def _never_sent(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"normalizing must not reach the network: {request.url}")


@cache
def connector(partner: str, version: str) -> Connector:
    """The production connector of ``version``, built offline: normalizing needs no request."""
    profile = Simulator().profile(partner)
    credentials = profile.config_credentials(*profile.credentials(1))
    document = {
        "integrations": [
            {
                "id": "fuzz",
                "partner": partner,
                "credentials": credentials,
                "resources": {},
                "api_version": version,
            },
        ]
    }
    settings = parse_settings(document, {}, registry.schemas())
    return registry.build_connector(
        settings.integrations[0],
        settings.partner(partner),
        transport=httpx.MockTransport(_never_sent),
        tokens=None,  # type: ignore[arg-type]  # no token is asked for
        metrics=Metrics(),
        log=get_logger(),
    )


@cache
def samples(partner: str, version: str, resource: str) -> list[dict[str, Any]]:
    sim = Simulator()
    profile = sim.profile(partner)
    data = profile.dataset(11, 12, DatasetOptions())
    lines = [
        orjson.loads(line)
        for chunk in profile.version_truth(data, resource, version)
        for line in chunk.splitlines()
    ]
    payloads = [line["payload"] for line in lines if line]
    assert payloads, f"{partner} renders no {resource}"
    return payloads


def _raw(payload: Any) -> bytes:
    """A truth payload as the partner sent it: JSON values re-encoded, a text payload (a
    partner speaking XML: ``truth`` gives its exact text) as its bytes."""
    return payload.encode() if isinstance(payload, str) else orjson.dumps(payload)


def _check(partner: str, version: str, resource: str, raw: bytes) -> None:
    driver = connector(partner, version)
    try:
        values = driver.normalizer(resource)(raw)
    except RECORD_ERRORS:
        pass
    else:
        assert isinstance(values, tuple)
        assert len(values) == len(RESOURCES[resource].model.model_fields)
    ident = driver.external_id(resource, raw)
    assert ident is None or isinstance(ident, str)


@pytest.mark.parametrize(("partner", "version", "resource"), CASES)
def test_every_rendered_record_normalizes(partner: str, version: str, resource: str) -> None:
    normalize = connector(partner, version).normalizer(resource)
    for payload in samples(partner, version, resource):
        normalize(_raw(payload))


@pytest.mark.parametrize(("partner", "version", "resource"), CASES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_drifted_records_are_values_or_dead_letters(
    partner: str, version: str, resource: str, data: st.DataObject
) -> None:
    record = copy.deepcopy(data.draw(st.sampled_from(samples(partner, version, resource))))
    if isinstance(record, str):  # text: a slice of it replaced by other text, 1-4 times
        for _ in range(data.draw(st.integers(1, 4))):
            start = data.draw(st.integers(0, len(record)))
            end = data.draw(st.integers(start, min(len(record), start + 40)))
            record = record[:start] + data.draw(st.text(max_size=12)) + record[end:]
        _check(partner, version, resource, record.encode())
        return
    # The record itself or an object inside it (a child record stored under its parent's id).
    objects = [record, *(v for v in record.values() if isinstance(v, dict))]
    for _ in range(data.draw(st.integers(1, 4))):
        target = data.draw(st.sampled_from(objects))
        key = data.draw((st.sampled_from(sorted(target)) if target else st.nothing()) | st.text(max_size=12))
        if data.draw(st.booleans()):
            target[key] = data.draw(JSON)
        else:
            target.pop(key, None)
    _check(partner, version, resource, _dumps(record))


@pytest.mark.parametrize(("partner", "version", "resource"), CASES)
@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300) | JSON.map(_dumps))
def test_arbitrary_bytes_are_values_or_dead_letters(
    partner: str, version: str, resource: str, raw: bytes
) -> None:
    _check(partner, version, resource, raw)
