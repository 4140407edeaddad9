"""Properties of the adapter: arbitrary JSON-ish records fail only as record errors (dead
letters), and every record the dataset renders normalizes to exactly its ground truth."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.connectors.hostaway import adapter
from syncd.models import Property, Reservation
from syncd.pipeline import RECORD_ERRORS
from syncd.simulator.profiles.hostaway import records
from tests.unit.hostaway import oracle
from tests.unit.hostaway.test_adapter import LISTING, RESERVATION

# Times Hostaway sends, MySQL's zero date, an impossible day, an offset past year 9999.
TIMES = ["2025-01-01 00:00:00", "0000-00-00 00:00:00", "2025-02-30", "9999-12-31 23:59:59-05:00"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63), st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(TIMES),
)  # fmt: skip
json_ish = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def changed(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The documented record with some of its fields replaced, removed or added."""
    return st.dictionaries(st.sampled_from([*base, "extra"]), json_ish, max_size=6).map(
        lambda changes: {**base, **changes}
    )


def outcome(normalize: Any, record: object, width: int) -> None:
    try:
        values = normalize(orjson.dumps(record))
    except RECORD_ERRORS:
        return
    assert len(values) == width


@settings(max_examples=300, deadline=None)
@given(st.one_of(changed(LISTING), json_ish))
def test_any_listing_payload_normalizes_or_is_a_record_error(record: object) -> None:
    outcome(adapter.listing_values, record, len(Property.model_fields))


@settings(max_examples=300, deadline=None)
@given(st.one_of(changed(RESERVATION), json_ish))
def test_any_reservation_payload_normalizes_or_is_a_record_error(record: object) -> None:
    outcome(adapter.reservation_values, record, len(Reservation.model_fields))


ids = st.integers(min_value=1, max_value=2**31)
hashes = st.integers(min_value=0, max_value=2**64 - 1)
versions = st.integers(min_value=1, max_value=40)
seconds = st.integers(min_value=records.T0_S - 10 * 365 * 86_400, max_value=records.T0_S + 50 * 365 * 86_400)
listing_fields = st.builds(records.ListingFields, ids, hashes, versions, seconds)


@settings(max_examples=300, deadline=None)
@given(listing_fields)
def test_every_rendered_listing_normalizes_to_its_ground_truth(f: records.ListingFields) -> None:
    assert adapter.listing_values(records.render_listing(f)) == oracle.listing_truth(f)


@settings(max_examples=300, deadline=None)
@given(ids, hashes, versions, seconds, st.integers(min_value=0, max_value=400 * 86_400), listing_fields)
def test_every_rendered_reservation_normalizes_to_its_ground_truth(
    ident: int, h: int, version: int, updated: int, age: int, listing: records.ListingFields
) -> None:
    f = records.ReservationFields(ident, h, version, updated, updated - age, listing)
    assert adapter.reservation_values(records.render_reservation(f)) == oracle.reservation_truth(f)
