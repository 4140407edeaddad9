"""Parsing of Guesty list parameters: what is accepted, what is a 400, and the envelope."""

from __future__ import annotations

import orjson
import pytest

from syncd.simulator import encoding
from syncd.simulator.profiles.guesty import query as guesty_query
from syncd.simulator.profiles.guesty.query import ListQuery, QueryError, parse_list_query
from syncd.simulator.sparse import ALL_AFTER, ALL_BEFORE

TS = "2025-01-01T00:00:10.000Z"
MS = encoding.parse_iso_ms(TS)


def _filters(*entries: dict[str, object]) -> str:
    return orjson.dumps(list(entries)).decode()


def test_defaults() -> None:
    assert parse_list_query({}) == ListQuery(ALL_BEFORE, ALL_AFTER, None, False, False, 0, 25, None)


@pytest.mark.parametrize(
    ("operator", "lo", "hi"),
    [
        ("$gte", MS, ALL_AFTER),
        ("$gt", MS + 1, ALL_AFTER),
        ("$lte", ALL_BEFORE, MS + 1),
        ("$lt", ALL_BEFORE, MS),
        ("$eq", MS, MS + 1),
    ],
)
def test_time_operators_become_half_open_windows(operator: str, lo: int, hi: int) -> None:
    q = parse_list_query({"filters": _filters({"field": "lastUpdatedAt", "operator": operator, "value": TS})})
    assert (q.lo_ms, q.hi_ms) == (lo, hi)


def test_between_is_inclusive_and_conditions_intersect() -> None:
    raw = _filters(
        {"field": "lastUpdatedAt", "operator": "$between", "from": "2025-01-01T00:00:00.000Z", "to": TS},
        {"field": "lastUpdatedAt", "operator": "$gt", "value": "2025-01-01T00:00:05.000Z"},
        {"field": "_id", "operator": "$eq", "value": "60000000aaaaaaaaaaaaaaaa"},
    )
    q = parse_list_query({"filters": raw, "sort": "-lastUpdatedAt", "limit": "100", "skip": "200"})
    assert (q.lo_ms, q.hi_ms) == (MS - 5000 + 1, MS + 1)
    assert q.id_eq == "60000000aaaaaaaaaaaaaaaa"
    assert (q.by_timestamp, q.descending, q.limit, q.skip) == (True, True, 100, 200)


def test_fields_are_space_separated() -> None:
    assert parse_list_query({"fields": "title  nickname address"}).fields == ("title", "nickname", "address")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "101"},
        {"limit": "0"},
        {"limit": "ten"},
        {"skip": "-1"},
        {"sort": "title"},
        {"filters": "[{"},
        {"filters": '{"field":"lastUpdatedAt"}'},
        {"filters": _filters({"field": "title", "operator": "$eq", "value": "x"})},
        {"filters": _filters({"field": "lastUpdatedAt", "operator": "$regex", "value": TS})},
        {"filters": _filters({"field": "lastUpdatedAt", "operator": "$gte", "value": "yesterday"})},
        {"filters": _filters({"field": "lastUpdatedAt", "operator": "$gte", "value": 5})},
        {"filters": _filters({"field": "_id", "operator": "$gt", "value": "x"})},
        {"filters": "[1]"},
    ],
)
def test_bad_parameters_are_rejected(params: dict[str, str]) -> None:
    with pytest.raises(QueryError):
        parse_list_query(params)


def test_envelope_and_projection() -> None:
    record = b'{"_id":"a","title":"T","nickname":"N","pictures":[]}'
    q = ListQuery(limit=10, skip=20)
    body = orjson.loads(guesty_query.render_page([record, record], 42, q))
    assert body == {"results": [orjson.loads(record)] * 2, "count": 42, "limit": 10, "skip": 20}
    assert orjson.loads(guesty_query.project(record, ["pictures"])) == {"_id": "a", "pictures": []}
