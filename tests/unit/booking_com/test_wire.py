"""Booking.com's OTA XML: each reservation kept as the exact bytes sent, hostile XML refused
whole (no entity expanded, nothing external read, no DTD, size and depth capped), and the
adapter's values or dead letters for any drift (hypothesis)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.connectors.booking_com import adapter, jwt_claims, wire
from syncd.models import ReservationStatus
from syncd.pipeline import RECORD_ERRORS
from syncd.simulator.profiles.booking_com.data import BookingAccount, element, message

NS = 'xmlns="http://www.opentravel.org/OTA/2003/05"'


def sample(n: int = 3) -> BookingAccount:
    return BookingAccount(seed=1, size=n)


def test_each_reservation_is_the_exact_bytes_the_partner_sent() -> None:
    data = sample(5)
    stays = list(data.stays.values())
    body = message("OTA_HotelResNotifRQ", stays, 10)
    got = wire.message(body)
    assert got.root == "OTA_HotelResNotifRQ" and got.timestamp == "2026-01-01T00:00:10+00:00"
    assert [i.raw for i in got.items] == [element(s) for s in stays]
    values = adapter.reservation_values(got.items[0].element, got.timestamp)
    assert values == adapter.values_of_raw(got.items[0].raw)
    assert values[0] == str(stays[0].id) and values[3] is ReservationStatus.CONFIRMED


def test_verbatim_bytes_survive_prefixes_entities_self_closing_tags_and_other_encodings() -> None:
    one = '<ota:HotelReservation ResStatus="Cancel" x="a&amp;b &#233;"><ota:X/></ota:HotelReservation>'
    two = "<ota:HotelReservation ResStatus='Commit'/>"
    three = "<ota:HotelResModify><!-- kept --><![CDATA[<raw>]]></ota:HotelResModify>"
    text = (
        f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<ota:Root xmlns:ota="urn:x" TimeStamp="t">'
        f"<ota:HotelReservations>\n  {one}{two}\n{three}</ota:HotelReservations></ota:Root>"
    )
    body = text.encode("latin-1")
    got = wire.message(body)
    assert [i.raw for i in got.items] == [one.encode(), two.encode("latin-1"), three.encode()]
    assert got.items[0].element.get("x") == "a&b é" and got.items[0].element.find("X") is not None


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<OTA_HotelResNotifRQ><HotelReservations><HotelReservation ResStatus="&lol9;"/>
</HotelReservations></OTA_HotelResNotifRQ>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<OTA_HotelResNotifRQ><HotelReservations><HotelReservation ResStatus="&xxe;"/>
</HotelReservations></OTA_HotelResNotifRQ>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>"""
PARAMETER_ENTITY = (
    b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><r/>"""
)
DEEP = b"<r>" + b"<a>" * 100 + b"</a>" * 100 + b"</r>"


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, PARAMETER_ENTITY, DEEP],
    ids=["billion-laughs", "external-entity", "external-dtd", "parameter-entity", "deep"],
)
def test_hostile_xml_is_refused_whole_and_quickly(body: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(wire.HostileXml):
        wire.message(body)
    with pytest.raises(wire.HostileXml):
        wire.element(body)
    assert time.perf_counter() - started < 1.0  # refused at the DOCTYPE, nothing expanded


def test_an_oversized_body_is_refused_before_parsing() -> None:
    body = b"<r>" + b" " * wire.MAX_XML_BYTES + b"</r>"
    with pytest.raises(wire.HostileXml, match="cap"):
        wire.message(body)


def test_broken_xml_is_a_value_error_retried_like_a_truncated_body() -> None:
    with pytest.raises(ValueError, match="not well-formed"):
        wire.message(b"<OTA_HotelResNotifRQ><HotelReservations><HotelRes")


def test_acknowledgements_name_every_id_and_read_back() -> None:
    ok = wire.message(wire.acknowledgement("OTA_HotelResNotifRS", ["1", "22"], "2026-01-01T00:00:00+00:00"))
    assert ok.success and not ok.errors and len(ok.items) == 2
    assert [adapter.reservation_id(i.element) for i in ok.items] == ["1", "22"]
    failed = wire.message(wire.acknowledgement("OTA_HotelResNotifRS", ["3"], "t", 'bad <"data">'))
    assert not failed.success and failed.errors == ['bad <"data">']


def test_last_write_wins_stamp_is_the_reservation_s_own_then_the_message_s() -> None:
    stay = next(iter(sample(1).stays.values()))
    el = ET.fromstring(element(stay))
    assert adapter.reservation_values(el, "2030-01-01T00:00:00+00:00")[1] == datetime(
        2026, 1, 1, 0, 0, 1, tzinfo=UTC
    )
    del el.attrib["LastModifyDateTime"]
    assert (
        adapter.reservation_values(el, "2030-01-01T00:00:00+02:00")[1].isoformat()
        == "2030-01-01T00:00:00+02:00"
    )
    with pytest.raises(ValueError, match="TimeStamp"):
        adapter.reservation_values(el, None)
    with pytest.raises(ValueError, match="offset"):
        adapter.reservation_values(el, "2030-01-01T00:00:00")


def test_the_jwt_lifetime_is_read_from_its_exp_claim() -> None:
    import base64

    import orjson

    payload = base64.urlsafe_b64encode(orjson.dumps({"exp": 123, "sub": "s"})).rstrip(b"=").decode()
    assert jwt_claims(f"h.{payload}.sig") == {"exp": 123, "sub": "s"}
    assert jwt_claims("not-a-jwt") == {} and jwt_claims("a.!!!.c") == {}


# -- hypothesis: drift on the structure -------------------------------------------------------

# Text XML can carry (letters, digits, punctuation, spaces in any script).
_TEXT = st.text(st.characters(categories=("L", "N", "P", "Zs")), max_size=12)
_NAME = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_]{0,8}\Z")
PATHS = [
    ".",
    "UniqueID",
    "RoomStays/RoomStay/TimeSpan",
    "RoomStays/RoomStay/GuestCounts/GuestCount",
    "RoomStays/RoomStay/Total",
    "RoomStays/RoomStay/BasicPropertyInfo",
    "ResGlobalInfo/HotelReservationIDs/HotelReservationID",
    "ResGuests/ResGuest/Profiles/ProfileInfo/Profile/Customer/PersonName",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_drifted_reservations_are_values_or_dead_letters(data: st.DataObject) -> None:
    stays = list(sample(4).stays.values())
    el = ET.fromstring(element(data.draw(st.sampled_from(stays))))
    for _ in range(data.draw(st.integers(1, 4))):
        target = el.find(data.draw(st.sampled_from(PATHS)))
        if target is None:
            continue
        action = data.draw(st.sampled_from(["drop-attr", "set-attr", "drop-child", "text"]))
        if action == "drop-attr" and target.attrib:
            target.attrib.pop(data.draw(st.sampled_from(sorted(target.attrib))))
        elif action == "set-attr":
            names = sorted(target.attrib) or ["X"]
            target.set(data.draw(st.sampled_from(names) | _NAME), data.draw(_TEXT))
        elif action == "drop-child" and len(target):
            target.remove(target[data.draw(st.integers(0, len(target) - 1))])
        else:
            target.text = data.draw(_TEXT)
    raw = ET.tostring(el)
    body = b"<OTA_HotelResNotifRQ><HotelReservations>" + raw + b"</HotelReservations></OTA_HotelResNotifRQ>"
    got = wire.message(body)
    assert [i.raw for i in got.items] == [raw]  # verbatim, whatever it now says
    try:
        values = adapter.reservation_values(got.items[0].element, None)
    except RECORD_ERRORS:
        return
    assert values == adapter.values_of_raw(raw)  # in a message or alone: the same values


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_reader(raw: bytes) -> None:
    try:
        got = wire.message(raw)
    except (ValueError, wire.HostileXml):
        return
    for item in got.items:
        try:
            adapter.reservation_values(item.element, got.timestamp)
        except RECORD_ERRORS:
            pass
