"""Request log: exact counters forever, a bounded ring of details."""

from __future__ import annotations

from syncd.simulator.requestlog import RequestEntry, RequestLog


def _entry(n: int, path: str = "/v1/listings", status: int = 200, account: str = "a") -> RequestEntry:
    return RequestEntry(float(n), account, "GET", path, f"skip={n}&limit=100&fields=_id+title", status)


def test_counters_survive_the_ring_and_entries_are_bounded() -> None:
    log = RequestLog(capacity=10)
    for n in range(25):
        log.record(_entry(n))
    log.record(_entry(99, "/v1/listings/{id}", 404, "b"))
    assert log.count() == 26
    assert log.count(path="/v1/listings", status=200, account="a", method="GET") == 25
    assert log.count(account="b") == 1
    assert log.counters()[("b", "GET", "/v1/listings/{id}", 404)] == 1
    entries = log.entries()
    assert len(entries) == 10
    assert [e.param("skip") for e in log.entries(path="/v1/listings", last=3)] == ["22", "23", "24"]
    assert entries[0].query == (("skip", "16"), ("limit", "100"), ("fields", "_id title"))
    assert log.entries(last=0) == []


def test_reset_and_json() -> None:
    log = RequestLog()
    log.record(_entry(1))
    data = log.to_json(last=5)
    assert data["counters"] == [
        {"account": "a", "method": "GET", "path": "/v1/listings", "status": 200, "count": 1}
    ]
    assert data["entries"] == [_entry(1).to_json()]
    log.reset()
    assert log.count() == 0 and log.entries() == []
