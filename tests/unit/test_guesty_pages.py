"""A Guesty list response becomes records: slices of a UTF-8 body, copies of any other."""

from __future__ import annotations

import pytest

from syncd.connectors.guesty.adapter import listing_values
from syncd.connectors.guesty.connector import _listed
from syncd.pipeline import RECORD_ERRORS
from syncd.store.types import TABLES, row_for

PROPERTIES = TABLES["properties"]
ASCII = b'{"_id":"a1","title":"Garden","lastUpdatedAt":"2025-01-01T00:00:00.000Z"}'
ACCENTED = '{"_id":"a2","title":"Café ☕ 海","lastUpdatedAt":"2025-01-01T00:00:01.000Z"}'.encode()
LATIN1 = b'{"_id":"a3","title":"Caf\xe9","lastUpdatedAt":"2025-01-01T00:00:02.000Z"}'


def page(*records: bytes) -> bytes:
    return b'{"results":[' + b",".join(records) + b'],"count":%d,"limit":100,"skip":0}' % len(records)


@pytest.mark.parametrize("records", [(ASCII, ASCII), (ASCII, ACCENTED)])
def test_a_utf8_page_is_checked_once_and_its_records_kept_byte_for_byte(records: tuple[bytes, ...]) -> None:
    listed = _listed(page(*records))
    assert listed.utf8_checked
    assert listed.count == len(records)
    assert [bytes(r) for r in listed.records] == list(records)
    # What the pipeline stores: the same bytes, no per-record check needed.
    rows = [row_for(PROPERTIES, listing_values(r), r, utf8_checked=True) for r in listed.records]
    assert [bytes(row[-1]) for row in rows] == list(records)


def test_a_page_with_one_invalid_byte_is_checked_record_by_record() -> None:
    """A Latin-1 byte in one record: that record fails its check (a dead letter in the
    pipeline), its neighbours pass, instead of PostgreSQL refusing the whole batch."""
    listed = _listed(page(ASCII, LATIN1, ACCENTED))
    assert not listed.utf8_checked
    ok_first, bad, ok_last = listed.records
    assert row_for(PROPERTIES, listing_values(ok_first), ok_first)[-1] == ASCII
    # Either the wire decoder (msgspec >= 0.23 checks UTF-8 in strings) or the record's own
    # check refuses it: both are record errors, which the pipeline dead-letters.
    with pytest.raises(RECORD_ERRORS):
        row_for(PROPERTIES, listing_values(bad), bad)
    assert row_for(PROPERTIES, listing_values(ok_last), ok_last)[-1] == ACCENTED
