"""Request log: exact counters forever, a bounded ring of details."""

from __future__ import annotations

from syncd.simulator import requestlog
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


def _at(t: float, account: str = "a", status: int = 200, retry_at: float | None = None) -> RequestEntry:
    return RequestEntry(
        t, account, "GET", "/v1/listings", "", status, "rate_limit" if retry_at else None, retry_at
    )


def test_faults_are_counted_by_kind_and_status_received() -> None:
    log = RequestLog()
    log.record(RequestEntry(1.0, "a", "GET", "/v1/listings", "", 0, "reset"))
    log.record(RequestEntry(2.0, "a", "GET", "/v1/listings", "", 401, "revoke_tokens+status"))
    log.record(_entry(3))
    assert log.count(status=0) == 1
    assert log.count_faults() == 2
    assert log.count_faults("reset") == 1 and log.count_faults("status") == 1
    assert log.count_faults("revoke_tokens", account="b") == 0
    assert log.fault_counters() == {
        ("a", "/v1/listings", "reset", 0): 1,
        ("a", "/v1/listings", "revoke_tokens+status", 401): 1,
    }
    faults = log.to_json()["faults"]
    assert isinstance(faults, list) and faults[0] == {
        "account": "a", "path": "/v1/listings", "fault": "reset", "status": 0, "count": 1
    }  # fmt: skip
    log.reset()
    assert log.count_faults() == 0


def test_retry_after_promises_are_checked_per_account() -> None:
    log = RequestLog()
    log.record(_at(10.0, status=429, retry_at=12.0))
    log.record(_at(10.5, account="b"))  # another account is not bound
    log.record(_at(12.0))  # exactly on time
    log.record(_at(12.5, status=429, retry_at=20.0))
    log.record(_at(12.51))  # in flight when the promise was made: within the slack
    log.record(_at(15.0))  # early
    log.record(_at(20.0))
    assert [(p.time, e.time) for p, e in log.retry_violations(slack_s=0.05)] == [(12.5, 15.0)]
    assert [(p.time, e.time) for p, e in log.retry_violations()] == [(12.5, 12.51), (12.5, 15.0)]


def test_retry_at_reads_both_forms() -> None:
    assert requestlog.retry_at("3", 100.0) == 103.0
    assert requestlog.retry_at("Wed, 21 Oct 2015 07:28:00 GMT", 0.0) == 1445412480.0
    assert requestlog.retry_at("soon", 0.0) is None
