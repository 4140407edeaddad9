"""Names and places of malformed records, read without raising; pure."""

from __future__ import annotations

from typing import Any

import msgspec

from syncd.connectors import lenient


class Head(msgspec.Struct):
    id: Any = None


HEAD = msgspec.json.Decoder(Head)


def test_a_record_that_decodes_is_read_and_one_that_does_not_is_the_default() -> None:
    default = Head()
    assert lenient.decode(HEAD, b'{"id": 7}', default) == Head(7)
    assert lenient.decode(HEAD, b'{"id": 7', default) is default  # truncated
    assert lenient.decode(HEAD, b"[1, 2]", default) is default  # not an object
    assert lenient.decode(HEAD, b"[" * 100_000 + b"]" * 100_000, default) is default  # hostile depth


def test_an_undecodable_record_is_named_by_its_first_id() -> None:
    assert lenient.raw_id(b'{"reservationID": "123", "x": ', "reservationID") == "123"
    assert lenient.raw_id(b'{"reservationID" : 456, "reservationID": "7"', "reservationID") == "456"
    assert lenient.raw_id(msgspec.Raw(b'{"_id": "abc-DEF_9"'), "_id") == "abc-DEF_9"
    assert lenient.raw_id(b'{"propertyID": "1"}', "reservationID") is None
    assert lenient.raw_id(b'{"id": "' + b"9" * 100 + b'"', "id") == "9" * 64  # at most 64 characters


def test_only_the_start_of_a_record_is_searched() -> None:
    late = b'{"pad": "' + b"x" * lenient.RAW_ID_WINDOW + b'", "id": "1"}'
    assert lenient.raw_id(late, "id") is None


def test_a_key_is_matched_as_text_not_as_a_pattern() -> None:
    assert lenient.raw_id(b'{"aXb": "1", "a.b": "2"}', "a.b") == "2"
