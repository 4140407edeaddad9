"""Hostaway calendar days -> canonical values (the documented day object and statuses),
and the partner-neutral child walk the connector drives (``syncd.connectors.children``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors import children
from syncd.connectors.base import Page
from syncd.connectors.hostaway import calendar
from syncd.models import UNTIMED, CalendarDay, CalendarStatus, field_names
from syncd.observability import drift
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.pipeline import RECORD_ERRORS
from syncd.simulator.encoding import format_date
from syncd.simulator.profiles.hostaway import data
from tests.unit.hostaway.simulated import Api, connector

# The documentation's calendar day object (Hostaway/api calendarDayObject), reservations left out.
DAY: dict[str, Any] = {
    "id": 46253, "date": "2017-07-15", "isAvailable": 0, "isProcessed": 1, "status": "reserved",
    "price": 225, "minimumStay": 1, "maximumStay": 1125, "closedOnArrival": None,
    "closedOnDeparture": None, "note": None, "countAvailableUnits": None, "reservations": [],
}  # fmt: skip


def stored(**changes: Any) -> bytes:
    day = {k: v for k, v in {**DAY, **changes}.items() if v is not ...}
    return children.child_record("40160", orjson.dumps(day))


def values(raw: bytes) -> dict[str, Any]:
    return dict(zip(field_names(CalendarDay), calendar.day_values(raw), strict=True))


def test_the_documented_day_under_its_listing_id() -> None:
    got = values(stored())
    assert got == {
        "external_id": "40160:2017-07-15",
        "source_updated_at": UNTIMED,
        "property_external_id": "40160",
        "day": date(2017, 7, 15),
        "status": CalendarStatus.RESERVED,
        "partner_status": "reserved",
        "price": Decimal(225),
        "currency": None,
        "min_nights": 1,
    }
    assert calendar.day_id(stored()) == "40160:2017-07-15"


@pytest.mark.parametrize(
    ("status", "canonical"),
    [
        ("available", CalendarStatus.AVAILABLE),
        ("blocked", CalendarStatus.UNAVAILABLE),
        ("hardBlock", CalendarStatus.UNAVAILABLE),
        ("mblocked", CalendarStatus.UNAVAILABLE),
        ("reserved", CalendarStatus.RESERVED),
        ("pending", CalendarStatus.RESERVED),
        ("mreserved", CalendarStatus.RESERVED),
        ("conflicted", CalendarStatus.OTHER),
    ],
)
def test_every_documented_status(status: str, canonical: CalendarStatus) -> None:
    got = values(stored(status=status))
    assert (got["status"], got["partner_status"]) == (canonical, status)


def test_a_day_without_a_status_goes_by_is_available() -> None:
    assert values(stored(status=..., isAvailable=1))["status"] is CalendarStatus.AVAILABLE
    assert values(stored(status=..., isAvailable=0))["status"] is CalendarStatus.UNAVAILABLE
    assert values(stored(status=..., isAvailable=...))["status"] is CalendarStatus.OTHER


def test_an_unknown_status_is_kept_as_other_and_counted_as_drift() -> None:
    metrics = Metrics()
    with drift.bind(drift.DriftSignal(metrics, get_logger()), "hostaway", "calendar"):
        got = values(stored(status="superBlocked"))
        values(stored(status="available"))
    assert (got["status"], got["partner_status"]) == (CalendarStatus.OTHER, "superBlocked")
    labels = {"partner": "hostaway", "resource": "calendar", "field": "status", "kind": "unknown_value"}
    assert metrics.registry.get_sample_value("syncd_schema_drift_total", labels) == 1


@pytest.mark.parametrize(
    "broken",
    [{"price": "cheap"}, {"price": -5}, {"date": "15/07/2017"}, {"date": ...}, {"minimumStay": 1.5}],
)
def test_a_malformed_day_is_a_record_error_that_still_names_itself(broken: dict[str, Any]) -> None:
    raw = stored(**broken)
    with pytest.raises(RECORD_ERRORS):
        calendar.day_values(raw)
    if broken.get("date", "") is not ...:
        assert calendar.day_id(raw) is not None
    assert calendar.day_id(b"not json") is None


def test_the_window_is_from_today_unless_a_start_is_set() -> None:
    w = children.Window.of(ResourceSettings(window_days=3), today=date(2025, 1, 30))
    assert (w.first, w.last) == (date(2025, 1, 30), date(2025, 2, 1))
    fixed = children.Window.of(ResourceSettings(window_start=date(2024, 2, 28), window_days=2))
    assert (fixed.first, fixed.last) == (date(2024, 2, 28), date(2024, 2, 29))


async def _pages(walk: AsyncGenerator[Page, None]) -> list[Page]:
    return [page async for page in walk]


@pytest.mark.anyio
async def test_the_child_walk_resumes_after_the_checkpoint_and_ends_with_a_reset() -> None:
    async def parents() -> AsyncGenerator[list[str], None]:
        yield ["10", "9"]
        yield ["100", "11"]

    fetched: list[str] = []

    async def fetch(parent: str, window: children.Window) -> Sequence[bytes] | None:
        fetched.append(parent)
        return None if parent == "11" else [b'{"date":"%s"}' % str(window.first).encode()]

    window = children.Window(date(2025, 1, 1), date(2025, 1, 1))
    pages = await _pages(children.walk(parents(), None, window, fetch))
    assert fetched == ["9", "10", "11", "100"]  # numbers in numeric order
    assert [p.checkpoint for p in pages] == [{"after_parent": p} for p in ("9", "10", "11", "100", None)]
    assert pages[0].records == [b'{"parent":"9","record":{"date":"2025-01-01"}}']
    assert pages[2].records == []  # a parent gone before its turn

    fetched.clear()
    resumed = await _pages(children.walk(parents(), {"after_parent": "10"}, window, fetch))
    assert fetched == ["11", "100"] and resumed[-1].checkpoint == {"after_parent": None}
    fetched.clear()
    await _pages(children.walk(parents(), {"after_parent": None}, window, fetch))
    assert fetched == ["9", "10", "11", "100"]


@pytest.mark.anyio
async def test_the_connector_streams_given_listings_and_fetches_one_day_as_the_truth_has_them() -> None:
    account = data.HostawayAccount(seed=4, listings=30, reservations_per_listing=2)
    first, span = account.calendar_window
    truth = {r["id"]: r["payload"] for r in map(orjson.loads, account.calendar_truth())}
    hostaway = connector(Api(account))
    settings = ResourceSettings(window_start=date(1970, 1, 1) + timedelta(days=first), window_days=span)

    pages = await _pages(hostaway.calendar(["40007", "40003", "49999"], settings))
    assert [p.checkpoint for p in pages] == [{"after_parent": p} for p in ("40007", "40003", "49999", None)]
    got = {calendar.day_id(r): orjson.loads(r) for p in pages for r in p.records}
    assert got == {k: v for k, v in truth.items() if k.split(":")[0] in ("40007", "40003")}
    assert all(hostaway.normalizer("calendar")(r) for p in pages for r in p.records)

    key = f"40003:{format_date(first + 5)}"
    one = await hostaway.fetch_one("calendar", key)
    assert one is not None and orjson.loads(one) == truth[key]
    assert await hostaway.fetch_one("calendar", f"49999:{format_date(first)}") is None
    with pytest.raises(errors.PartnerRejected):
        await hostaway.fetch_one("calendar", "40003")
