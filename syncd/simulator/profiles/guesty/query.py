"""Guesty list-query parameters (``limit skip fields filters sort``) as a validated value.

Pure: the API shell hands over the raw query string values and turns ``QueryError``
into a 400. The ``filters`` grammar is the legacy one, a JSON array such as
``[{"field":"lastUpdatedAt","operator":"$gte","value":"2025-01-01T00:00:00.000Z"}]``
or ``{"field":…,"operator":"$between","from":…,"to":…}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import orjson

from syncd.simulator import encoding
from syncd.simulator.sparse import ALL_AFTER, ALL_BEFORE

DEFAULT_LIMIT: Final = 25
MAX_LIMIT: Final = 100
# sort value → (order by timestamp?, descending?). _id and createdAt share index order.
SORTS: Final[Mapping[str, tuple[bool, bool]]] = {
    "lastUpdatedAt": (True, False),
    "-lastUpdatedAt": (True, True),
    "_id": (False, False),
    "-_id": (False, True),
    "createdAt": (False, False),
    "-createdAt": (False, True),
}
_TIME_OPERATORS: Final = frozenset(("$gte", "$gt", "$lte", "$lt", "$between", "$eq"))


class QueryError(ValueError):
    """The query cannot be served; the message goes back to the client with a 400."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated list request: the half-open ``lastUpdatedAt`` window ``[lo_ms, hi_ms)``."""

    lo_ms: int = ALL_BEFORE
    hi_ms: int = ALL_AFTER
    id_eq: str | None = None
    by_timestamp: bool = False
    descending: bool = False
    skip: int = 0
    limit: int = DEFAULT_LIMIT
    fields: tuple[str, ...] | None = None


def _int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"'{name}' must be an integer") from None
    if not lo <= value <= hi:
        raise QueryError(f"'{name}' must be between {lo} and {hi}")
    return value


def _timestamp(entry: Mapping[str, object], key: str) -> int:
    value = entry.get(key)
    if not isinstance(value, str):
        raise QueryError(f"filter '{key}' must be an ISO 8601 date string")
    try:
        return encoding.parse_iso_ms(value)
    except ValueError:
        raise QueryError(f"filter '{key}' is not a valid date: {value!r}") from None


def parse_filters(raw: str) -> tuple[int, int, str | None]:
    """``filters`` JSON → (lo_ms, hi_ms, id_eq); several conditions intersect."""
    try:
        entries = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise QueryError("'filters' is not valid JSON") from None
    if not isinstance(entries, list):
        raise QueryError("'filters' must be a JSON array")
    lo, hi, id_eq = ALL_BEFORE, ALL_AFTER, None
    for entry in entries:
        if not isinstance(entry, dict):
            raise QueryError("each filter must be an object")
        name, operator = entry.get("field"), entry.get("operator")
        if name == "_id":
            if operator != "$eq" or not isinstance(entry.get("value"), str):
                raise QueryError("'_id' supports only $eq with a string value")
            if id_eq is not None and id_eq != entry["value"]:
                hi = lo  # two different ids: nothing can match
            id_eq = str(entry["value"])
            continue
        if name != "lastUpdatedAt":
            raise QueryError(f"unsupported filter field: {name!r}")
        if operator not in _TIME_OPERATORS:
            raise QueryError(f"unsupported operator for lastUpdatedAt: {operator!r}")
        if operator == "$between":
            lo = max(lo, _timestamp(entry, "from"))
            hi = min(hi, _timestamp(entry, "to") + 1)
            continue
        ms = _timestamp(entry, "value")
        if operator in ("$gte", "$eq"):
            lo = max(lo, ms)
        if operator in ("$lte", "$eq"):
            hi = min(hi, ms + 1)
        if operator == "$gt":
            lo = max(lo, ms + 1)
        if operator == "$lt":
            hi = min(hi, ms)
    return lo, hi, id_eq


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """Validate ``limit skip fields filters sort`` exactly as the list endpoints accept them."""
    limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    skip = _int_param(params, "skip", 0, 0, 1 << 40)
    sort = params.get("sort") or "_id"
    if sort not in SORTS:
        raise QueryError(f"unsupported sort: {sort!r} (use one of {', '.join(SORTS)})")
    by_timestamp, descending = SORTS[sort]
    lo, hi, id_eq = ALL_BEFORE, ALL_AFTER, None
    if params.get("filters"):
        lo, hi, id_eq = parse_filters(params["filters"])
    fields = tuple(f for f in params.get("fields", "").replace(",", " ").split() if f)
    return ListQuery(lo, hi, id_eq, by_timestamp, descending, skip, limit, fields or None)


def project(record: bytes, fields: Sequence[str]) -> bytes:
    """Keep ``_id`` plus the requested top-level fields, in the record's own key order."""
    wanted = {"_id", *fields}
    data = orjson.loads(record)
    return orjson.dumps({k: v for k, v in data.items() if k in wanted})


def render_page(records: Sequence[bytes], count: int, query: ListQuery) -> bytes:
    """The ``{"results","count","limit","skip"}`` envelope around already-rendered records.

    Built with a single join: a second copy of a ~150 KB page costs more than the join itself.
    """
    tail = b'],"count":%d,"limit":%d,"skip":%d}' % (count, query.limit, query.skip)
    if not records:
        return b'{"results":[' + tail
    parts = list(records)
    parts[0] = b'{"results":[' + parts[0]
    parts[-1] += tail
    return b",".join(parts)
