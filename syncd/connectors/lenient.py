"""Reading what names and places a record that may be malformed. Pure, never raising.

A record the normalizer refuses becomes a dead letter, but the walk still needs its id
and update time to move past it, and the dead letter needs an id to be replayed by.
"""

from __future__ import annotations

import functools
import re
from typing import TypeVar

import msgspec

from syncd.store.types import RawRecord

T = TypeVar("T")
# Only the start of an undecodable record is searched for its id: a hostile record may be
# megabytes long.
RAW_ID_WINDOW = 4096


def decode(decoder: msgspec.json.Decoder[T], raw: RawRecord, default: T) -> T:
    """``raw`` as ``decoder`` reads it, or ``default`` when it cannot (RecursionError: JSON
    nested deeper than any decoder follows, a hostile record)."""
    try:
        return decoder.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return default


def raw_id(raw: RawRecord, key: str) -> str | None:
    """The first ``"key": id`` in a record too broken to decode (an id a string or an
    integer, of up to 64 letters, digits, ``_`` or ``-``), or None."""
    match = _id_pattern(key).search(memoryview(raw)[:RAW_ID_WINDOW])
    return match.group(1).decode() if match else None


@functools.cache
def _id_pattern(key: str) -> re.Pattern[bytes]:
    return re.compile(rb'"%s"\s*:\s*"?([0-9A-Za-z_-]{1,64})' % re.escape(key.encode()))
