"""Guesty's reservations-v3 search (partners.md section 1): its query grammar and envelope.

``GET /reservations-v3/search?filter[status][in]=…&filter[checkIn][gte]=YYYY-MM-DD
&filter[createdAt][gte]=ISO&sort=-_id&skip&limit``: sort fields ``_id checkIn checkOut
createdAt`` only (``-`` for descending), limit 25 by default and at most 100, an
unsupported filter or sort is a 400, and there is no filter on the update time.

Pure, like ``query``: the API shell hands over the query string and turns ``QueryError``
into a 400. What the documentation leaves open is marked ASSUMPTION and chosen to be the
least surprising next to the legacy endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from syncd.simulator import encoding
from syncd.simulator.profiles.guesty.query import DEFAULT_LIMIT, MAX_LIMIT, QueryError

SORT_FIELDS: Final = ("_id", "checkIn", "checkOut", "createdAt")
# ASSUMPTION: the default order (partners.md documents none) is ascending ``_id``.
DEFAULT_SORT: Final = "_id"
_FILTER: Final = re.compile(r"^filter\[([A-Za-z_]+)\]\[([a-z]+)\]$")
_DATE_OPERATORS: Final = frozenset(("gte", "lte"))
# ASSUMPTION: the legacy grammar's parameters are not silently ignored but refused, like
# any other unsupported filter or sort.
_LEGACY_PARAMETERS: Final = frozenset(("filters",))


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A validated v3 search: days are days since the epoch (local stay dates), times ms."""

    sort: str = DEFAULT_SORT
    descending: bool = False
    skip: int = 0
    limit: int = DEFAULT_LIMIT
    statuses: frozenset[str] | None = None
    check_in_days: tuple[int | None, int | None] = (None, None)
    check_out_days: tuple[int | None, int | None] = (None, None)
    created_ms: tuple[int | None, int | None] = (None, None)

    @property
    def filtered(self) -> bool:
        return (
            self.statuses is not None
            or self.check_in_days != (None, None)
            or self.check_out_days != (None, None)
            or self.created_ms != (None, None)
        )


def _int(params: Mapping[str, str], name: str, default: int, hi: int) -> int:
    raw = params.get(name) or ""
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"'{name}' must be an integer") from None
    if not (0 if name == "skip" else 1) <= value <= hi:
        raise QueryError(f"'{name}' is out of range")
    return value


def _day(value: str) -> int:
    try:
        return encoding.parse_iso_ms(value + "T00:00:00.000Z") // 86_400_000
    except ValueError:
        raise QueryError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _ms(value: str) -> int:
    try:
        return encoding.parse_iso_ms(value)
    except ValueError:
        raise QueryError(f"not an ISO 8601 date-time: {value!r}") from None


def _bound(
    current: tuple[int | None, int | None], operator: str, value: int
) -> tuple[int | None, int | None]:
    return (value, current[1]) if operator == "gte" else (current[0], value)


def parse_search(params: Mapping[str, str]) -> SearchQuery:
    """Validate a v3 search's parameters exactly as the endpoint accepts them."""
    raw_sort = params.get("sort") or DEFAULT_SORT
    descending = raw_sort.startswith("-")
    sort = raw_sort.removeprefix("-")
    if sort not in SORT_FIELDS:
        raise QueryError(f"unsupported sort: {raw_sort!r} (sort fields: {', '.join(SORT_FIELDS)})")
    statuses: frozenset[str] | None = None
    check_in: tuple[int | None, int | None] = (None, None)
    check_out: tuple[int | None, int | None] = (None, None)
    created: tuple[int | None, int | None] = (None, None)
    for name, value in params.items():
        if name in _LEGACY_PARAMETERS:
            raise QueryError(
                f"unsupported parameter: {name!r} (reservations-v3 filters are filter[field][op])"
            )
        if not name.startswith("filter"):
            continue
        match = _FILTER.match(name)
        field, operator = match.groups() if match else ("", "")
        if field == "status" and operator == "in":
            statuses = frozenset(s for s in value.split(",") if s)
        elif field in ("checkIn", "checkOut") and operator in _DATE_OPERATORS:
            if field == "checkIn":
                check_in = _bound(check_in, operator, _day(value))
            else:
                check_out = _bound(check_out, operator, _day(value))
        elif field == "createdAt" and operator in _DATE_OPERATORS:
            created = _bound(created, operator, _ms(value))
        else:
            raise QueryError(f"unsupported filter: {name!r}")
    return SearchQuery(
        sort,
        descending,
        _int(params, "skip", 0, 1 << 40),
        _int(params, "limit", DEFAULT_LIMIT, MAX_LIMIT),
        statuses,
        check_in,
        check_out,
        created,
    )


def within(value: int, bounds: tuple[int | None, int | None]) -> bool:
    lo, hi = bounds
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def v3_record(legacy: bytes) -> bytes:
    """A reservation as v3 renders it: the legacy record without the embedded ``guest`` and
    ``money`` (v3 "no longer embeds guest or financial data"). ASSUMPTION: every other
    field, ``lastUpdatedAt`` included, keeps its legacy name and value."""
    start = legacy.find(b',"guest":')
    if start < 0:
        return legacy
    end = legacy.index(b',"createdAt":', start)
    return legacy[:start] + legacy[end:]


def render_search(records: Sequence[bytes], query: SearchQuery, has_more: bool) -> bytes:
    """The envelope. ASSUMPTION: the records sit under ``results`` as on the legacy list
    endpoints; ``pagination`` carries ``skip``, ``limit`` and the documented ``hasMore``."""
    tail = b'],"pagination":{"skip":%d,"limit":%d,"hasMore":%s}}' % (
        query.skip,
        query.limit,
        b"true" if has_more else b"false",
    )
    return b'{"results":[' + b",".join(records) + tail
