"""A Guesty list response becomes records: slices of its body, kept byte for byte."""

from __future__ import annotations

import msgspec
import pytest

from syncd.connectors.guesty.adapter import listing_values
from syncd.connectors.guesty.connector import _listed
from syncd.pipeline import RECORD_ERRORS
from syncd.store.types import TABLES, row_for

PROPERTIES = TABLES["properties"]
ASCII = b'{"_id":"a1","title":"Garden","lastUpdatedAt":"2025-01-01T00:00:00.000Z"}'
ACCENTED = '{"_id":"a2","title":"Café ☕ 海","lastUpdatedAt":"2025-01-01T00:00:01.000Z"}'.encode()
LATIN1 = b'{"_id":"a3","title":"Caf\xe9","lastUpdatedAt":"2025-01-01T00:00:02.000Z"}'
# Not UTF-8 in a field no decoder reads: nothing refuses it, the row keeps it as it came.
LATIN1_UNMAPPED = (
    b'{"_id":"a4","title":"Cafe","pictures":[{"caption":"caf\xe9"}],'
    b'"lastUpdatedAt":"2025-01-01T00:00:03.000Z"}'
)


def page(*records: bytes) -> bytes:
    return b'{"results":[' + b",".join(records) + b'],"count":%d,"limit":100,"skip":0}' % len(records)


@pytest.mark.parametrize("records", [(ASCII, ASCII), (ASCII, ACCENTED)])
def test_a_page_s_records_are_slices_of_its_body_kept_byte_for_byte(records: tuple[bytes, ...]) -> None:
    listed = _listed(page(*records))
    assert listed.count == len(records)
    assert all(isinstance(r, msgspec.Raw) for r in listed.records)  # no copies
    assert [bytes(r) for r in listed.records] == list(records)
    rows = [row_for(PROPERTIES, listing_values(r), r) for r in listed.records]
    assert [(bytes(row[-2]), row[-1]) for row in rows] == [(r, "application/json") for r in records]


def test_bytes_that_are_not_utf8_fail_only_their_own_record_and_only_in_a_mapped_field() -> None:
    """In a mapped field the wire decoder refuses the record (a record error: its dead
    letter in the pipeline); in an unmapped one nothing reads them, and the record's row
    carries its bytes as they came (``raw`` is bytea)."""
    listed = _listed(page(ASCII, LATIN1, LATIN1_UNMAPPED, ACCENTED))
    ok_first, bad_mapped, bad_unmapped, ok_last = listed.records
    with pytest.raises(RECORD_ERRORS):
        listing_values(bad_mapped)
    rows = [row_for(PROPERTIES, listing_values(r), r) for r in (ok_first, bad_unmapped, ok_last)]
    assert [bytes(row[-2]) for row in rows] == [ASCII, LATIN1_UNMAPPED, ACCENTED]
    assert [row[0] for row in rows] == ["a1", "a4", "a2"]


def test_a_page_decoded_typed_at_once_gives_the_values_record_by_record_decoding_would() -> None:
    from syncd.connectors.guesty.connector import _LIST_DECODERS

    too_long = b'{"_id":"a5","title":"' + b"x" * 600 + b'","lastUpdatedAt":"2025-01-01T00:00:04.000Z"}'
    listed = _LIST_DECODERS["/listings"](page(ASCII, ACCENTED, too_long, LATIN1_UNMAPPED))
    assert listed.values is not None
    assert listed.values[:2] == [listing_values(r) for r in listed.records[:2]]
    assert listed.values[2] is None  # the canonical bound fails: the pipeline dead-letters it from raw
    with pytest.raises(RECORD_ERRORS):
        listing_values(listed.records[2])
    assert listed.values[3] == listing_values(listed.records[3])  # its bad bytes are stored as they are


def test_a_page_with_a_record_the_wire_decoder_refuses_is_left_to_record_by_record() -> None:
    from syncd.connectors.guesty.connector import _LIST_DECODERS

    listed = _LIST_DECODERS["/listings"](page(ASCII, LATIN1, ACCENTED))
    assert listed.values is None and len(listed.records) == 3


def test_values_stay_aligned_when_the_anchor_is_dropped() -> None:
    from syncd.connectors.guesty.connector import _LIST_DECODERS, _kept_values

    listed = _LIST_DECODERS["/listings"](page(ASCII, ACCENTED, LATIN1_UNMAPPED))
    assert listed.values is not None
    for dropped in range(3):
        kept = [r for n, r in enumerate(listed.records) if n != dropped]
        assert _kept_values(listed, kept) == [listing_values(r) for r in kept]
    assert _kept_values(listed, list(listed.records)) == listed.values


def test_the_pictures_digest_is_computed_only_for_integrations_that_sync_photos() -> None:
    """Both paths (a page decoded whole, a record alone) agree, with or without photos."""
    from syncd.connectors.guesty import adapter
    from syncd.connectors.guesty.connector import _LIST_DECODERS, _LIST_DECODERS_UNPICTURED
    from syncd.simulator.profiles.guesty.render import ListingRenderer

    raw = ListingRenderer(7).render_base(3)
    body = b'{"results":[' + raw + b"]}"
    [with_photos] = _LIST_DECODERS["/listings"](body).values or [None]
    [without] = _LIST_DECODERS_UNPICTURED["/listings"](body).values or [None]
    assert with_photos == adapter.listing_values(raw) and with_photos is not None
    assert without == adapter.listing_values_unpictured(raw) and without is not None
    assert with_photos[-1] is not None and without[-1] is None
    assert with_photos[:-1] == without[:-1]
