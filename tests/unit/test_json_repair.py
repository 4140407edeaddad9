"""Lone surrogate escapes (a JavaScript backend cutting an emoji in half) are repaired to
U+FFFD; everything else, valid surrogate pairs and escaped backslashes included, is kept."""

from __future__ import annotations

import json

import msgspec
import orjson
from hypothesis import given
from hypothesis import strategies as st

from syncd.connectors.json_repair import repair_lone_surrogates


def test_lone_surrogates_become_the_replacement_character() -> None:
    body = b'{"a":"cut \\ud83d","b":"\\ude00 start","c":"\\ud83d\\ude00 ok","d":"x\\\\ud800y"}'
    repaired = repair_lone_surrogates(body)
    assert orjson.loads(repaired) == {
        "a": "cut \ufffd",
        "b": "\ufffd start",
        "c": "\U0001f600 ok",  # a valid pair is kept
        "d": "x\\ud800y",  # an escaped backslash: this is text, not an escape
    }


def test_two_highs_then_a_low_keep_the_pair_and_fix_the_first() -> None:
    body = b'["\\uD800\\uD83D\\uDE00"]'
    assert orjson.loads(repair_lone_surrogates(body)) == ["\ufffd\U0001f600"]


def test_bodies_without_escapes_are_returned_as_they_are() -> None:
    body = b'{"title":"caf\xc3\xa9 \xf0\x9f\x98\x80"}'
    assert repair_lone_surrogates(body) is body


@given(st.lists(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF)), max_size=5))
def test_any_string_list_decodes_after_repair(values: list[str]) -> None:
    # json.dumps escapes lone surrogates exactly as JavaScript's JSON.stringify does.
    body = json.dumps(values).encode()
    decoded = msgspec.json.decode(repair_lone_surrogates(body), type=list[str])
    expected = [v.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for v in values]
    assert decoded == expected


def test_a_guesty_page_with_a_cut_emoji_is_decoded_and_normalized() -> None:
    import pytest

    from syncd.connectors.guesty.adapter import listing_to_property
    from syncd.connectors.guesty.connector import _listed, _page

    cut = b'{"_id":"a1","title":"Sea view \\ud83d","lastUpdatedAt":"2025-01-01T00:00:00.000Z"}'
    fine = b'{"_id":"a2","title":"Garden","lastUpdatedAt":"2025-01-01T00:00:01.000Z"}'
    listed = _listed(b'{"results":[' + cut + b"," + fine + b'],"count":2}')
    assert [listing_to_property(r).title for r in listed.records] == ["Sea view \ufffd", "Garden"]
    assert bytes(listed.records[1]) == fine  # slices of the repaired body
    with pytest.raises(msgspec.DecodeError):
        _page(b'{"results":[' + fine + b"")  # truncated: not repairable, retried as before


def test_hostile_bodies_are_undecodable_errors_not_crashes() -> None:
    """Nested deeper than any decoder follows, NaN, invalid UTF-8: each is a classified
    error the client retries and the connector can salvage, never an unhandled one."""
    import pytest

    from syncd import errors
    from syncd.connectors.guesty.adapter import listing_to_property
    from syncd.connectors.guesty.connector import GuestyConnector, _id_of, _page
    from syncd.http.client import PartnerClient
    from syncd.pipeline import RECORD_ERRORS

    deep = b'{"_id":"a1","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for body in (deep, b'{"results":[{"_id":"a5","n":NaN}]}'):
        with pytest.raises(errors.UndecodableBody) as caught:
            PartnerClient._decode(body, _page, "/listings")
        assert caught.value.body == body[:65_536]
    assert _id_of(deep) is None
    assert GuestyConnector.external_id(None, "properties", deep) == "a1"  # type: ignore[arg-type]
    with pytest.raises(RECORD_ERRORS):
        listing_to_property(deep)
    with pytest.raises(RECORD_ERRORS):
        listing_to_property(b'{"_id":"a3","title":"\xff\xfe","lastUpdatedAt":"2025-01-01T00:00:00.000Z"}')
