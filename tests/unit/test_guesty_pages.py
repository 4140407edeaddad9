"""A Guesty list response becomes records: slices of its body, kept byte for byte."""

from __future__ import annotations

import msgspec
import pytest

from syncd.connectors.guesty.adapter import listing_values
from syncd.connectors.guesty.connector import _listed
from syncd.pipeline import RECORD_ERRORS
from syncd.store.types import TABLES, Batch, row_for, without_undecodable

PROPERTIES = TABLES["properties"]
ASCII = b'{"_id":"a1","title":"Garden","lastUpdatedAt":"2025-01-01T00:00:00.000Z"}'
ACCENTED = '{"_id":"a2","title":"Café ☕ 海","lastUpdatedAt":"2025-01-01T00:00:01.000Z"}'.encode()
LATIN1 = b'{"_id":"a3","title":"Caf\xe9","lastUpdatedAt":"2025-01-01T00:00:02.000Z"}'
# Not UTF-8 in a field no decoder reads: only PostgreSQL, storing ``raw``, would see it.
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
    assert [bytes(row[-1]) for row in rows] == list(records)


def test_bytes_that_are_not_utf8_fail_only_their_own_record() -> None:
    """In a mapped field the wire decoder refuses the record (a record error: its dead
    letter in the pipeline); in an unmapped one, the writer's fallback finds it after
    PostgreSQL refused the COPY. Either way its neighbours stay rows."""
    listed = _listed(page(ASCII, LATIN1, LATIN1_UNMAPPED, ACCENTED))
    ok_first, bad_mapped, bad_unmapped, ok_last = listed.records
    with pytest.raises(RECORD_ERRORS):
        listing_values(bad_mapped)
    batch = Batch(rows=[row_for(PROPERTIES, listing_values(r), r) for r in (ok_first, bad_unmapped, ok_last)])
    assert without_undecodable(batch) == ["a4"]
    assert [bytes(row[-1]) for row in batch.rows] == [ASCII, ACCENTED]
    [letter] = batch.dead_letters
    assert letter.external_id == "a4" and letter.error_class == "data"
    assert letter.reason.startswith("UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9")
    assert "caf\ufffd" in (letter.payload or "")
    assert without_undecodable(batch) == []  # nothing more to move: the writer re-raises
