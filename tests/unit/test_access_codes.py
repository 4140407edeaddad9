"""The push direction's pure parts, by property: the desired code a stay calls for (its
validity in the listing's time zone, its idempotency key) and the Seam adapter's reading
of whatever an access code answer holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd import errors
from syncd.config import LockSettings
from syncd.connectors.access import FAILED, REMOVING, SET, SETTING, acted_unknown
from syncd.connectors.seam import wire
from syncd.connectors.seam.connector import _code, remote
from syncd.engine.access import desired_code, idempotency_key, stay_window
from syncd.models import ReservationStatus
from syncd.store.access import SourceRow

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Auckland", "America/St_Johns"]
LOCKS = LockSettings(follows="pms", devices={"L1": "d1", "L2": "d2"}, timezone="UTC")


def row(**fields: Any) -> SourceRow:
    values: dict[str, Any] = {
        "external_id": "R1",
        "property_external_id": "L1",
        "status": "confirmed",
        "check_in": None,
        "check_out": None,
        "check_in_date": date(2025, 3, 10),
        "check_out_date": date(2025, 3, 13),
        "deleted": False,
        "version": 1,
        "timezone": None,
    }
    return SourceRow(**{**values, **fields})


stays = st.tuples(st.dates(date(2000, 1, 1), date(2090, 1, 1)), st.integers(1, 60))
times = st.sampled_from(["00:00", "11:00", "15:00", "23:59", "02:30"])


@given(stays, st.sampled_from(ZONES), times, times)
def test_a_stay_by_dates_runs_from_check_in_time_to_check_out_time_in_the_listing_zone(
    stay: tuple[date, int], zone: str, check_in: str, check_out: str
) -> None:
    first, nights = stay
    locks = LOCKS.model_copy(update={"check_in_time": check_in, "check_out_time": check_out})
    window = stay_window(
        row(check_in_date=first, check_out_date=first + timedelta(nights), timezone=zone), locks
    )
    assert window is not None
    starts, ends = window
    assert starts.tzinfo == UTC and ends.tzinfo == UTC and starts < ends
    local_in, local_out = starts.astimezone(ZoneInfo(zone)), ends.astimezone(ZoneInfo(zone))
    assert local_in.date() == first and local_out.date() == first + timedelta(nights)
    # The wall-clock time, unless a DST gap swallowed it (then the hour after).
    assert local_in.strftime("%H:%M") == check_in or local_in.hour == int(check_in[:2]) + 1
    assert local_out.strftime("%H:%M") == check_out or local_out.hour == int(check_out[:2]) + 1


@given(st.sampled_from(ZONES))
def test_a_listing_without_a_known_zone_uses_the_configured_one(zone: str) -> None:
    locks = LOCKS.model_copy(update={"timezone": zone})
    for listing_zone in (None, "Not/AZone"):
        window = stay_window(row(timezone=listing_zone), locks)
        assert window is not None
        assert window[0].astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") == "2025-03-10 15:00"


def test_check_in_and_out_times_win_over_dates() -> None:
    at = datetime(2025, 3, 10, 13, 30, tzinfo=UTC)
    window = stay_window(row(check_in=at, check_out=at + timedelta(days=2)), LOCKS)
    assert window == (at, at + timedelta(days=2))
    assert stay_window(row(check_in_date=None), LOCKS) is None  # no dates: no code
    assert stay_window(row(check_out_date=date(2025, 3, 10)), LOCKS) is None  # ends before it starts


@given(st.sampled_from(list(ReservationStatus)), st.booleans(), st.sampled_from(["L1", "L2", "L9"]))
def test_only_live_stays_at_a_locked_listing_get_a_code(
    status: ReservationStatus, deleted: bool, listing: str
) -> None:
    code = desired_code(
        "lk", "pms", "R1", row(status=status.value, deleted=deleted, property_external_id=listing), LOCKS
    )
    wanted = status.value in LOCKS.statuses and not deleted and listing in LOCKS.devices
    assert (code is not None) == wanted
    if code is not None:
        assert code.device_id == LOCKS.devices[listing]
        assert code.name == "syncd:pms:R1"
    assert desired_code("lk", "pms", "R1", None, LOCKS) is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["lk", "lk2"]),
            st.sampled_from(["R1", "R2"]),
            st.integers(1, 3),
            st.sampled_from(["d1", "d2"]),
            st.integers(0, 2),
            st.integers(3, 5),
        ),
        min_size=2,
        max_size=2,
        unique=True,
    )
)
def test_idempotency_keys_are_stable_per_desired_state_and_differ_otherwise(
    pair: list[tuple[Any, ...]],
) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)

    def key(lock: str, rid: str, version: int, device: str, start: int, end: int) -> str:
        return idempotency_key(
            lock, "pms", rid, version, device, base + timedelta(days=start), base + timedelta(days=end)
        )

    a, b = pair
    assert key(*a) == key(*a)
    assert key(*a) != key(*b)


codes = st.fixed_dictionaries(
    {
        "access_code_id": st.text(min_size=1, max_size=40),
        "device_id": st.text(min_size=1, max_size=40),
    },
    optional={
        "status": st.sampled_from(["setting", "set", "unset", "removing", "weird"]),
        "name": st.none() | st.text(max_size=60),
        "code": st.text(alphabet="0123456789", min_size=4, max_size=8),
        "starts_at": st.none()
        | st.text(max_size=30)
        | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        "ends_at": st.none() | st.text(max_size=30),
        "errors": st.lists(st.fixed_dictionaries({"error_code": st.text(max_size=30)}), max_size=2),
        "warnings": st.lists(st.dictionaries(st.text(max_size=5), st.text(max_size=5)), max_size=2),
        "extra": st.integers(-(2**63), 2**63 - 1),
    },
)


@given(codes)
def test_the_adapter_reads_any_access_code_answer_or_refuses_it_as_undecodable(code: dict[str, Any]) -> None:
    body = orjson.dumps({"access_code": code, "ok": True})
    found = remote(_code(body))
    assert found.id == code["access_code_id"] and found.device_id == code["device_id"]
    if code.get("errors"):
        assert found.status == FAILED
    else:
        assert found.status in (SETTING, SET, REMOVING)
    assert "code" not in wire.AccessCode.__struct_fields__  # the PIN is never decoded


@given(st.binary(max_size=200))
def test_garbage_is_an_undecodable_answer_never_a_crash(body: bytes) -> None:
    try:
        remote(_code(body))
    except (msgspec.MsgspecError, ValueError):
        pass


@pytest.mark.parametrize(
    ("exc", "unknown"),
    [
        (errors.NotSent("refused"), False),
        (errors.RateLimited("429"), False),
        (errors.PartnerRejected("400", status=400), False),
        (errors.PartnerUnavailable("502", status=502), True),
        (errors.UndecodableBody("cut"), True),
    ],
)
def test_which_failed_writes_may_still_have_been_carried_out(exc: errors.PartnerError, unknown: bool) -> None:
    assert acted_unknown(exc) is unknown


def test_a_device_budget_refuses_beyond_its_limit_with_the_wait_and_recovers() -> None:
    from syncd.connectors.seam.connector import DeviceBudget

    now = [100.0]
    budget = DeviceBudget({"create": 2, "delete": 3}, 60.0, clock=lambda: now[0])
    budget.take("d1", "create")
    now[0] += 10
    budget.take("d1", "create")
    with pytest.raises(errors.RateLimited) as refused:
        budget.take("d1", "create")
    assert refused.value.retry_after == pytest.approx(50.0)
    budget.take("d2", "create")  # per device
    budget.take("d1", "delete")  # per action
    budget.take("d1", "get")  # unlimited
    now[0] += 50
    budget.take("d1", "create")  # the first one left the window
