"""Booking.com OTA reservations (one ``HotelReservation`` element) -> canonical values.
Pure; each rule a documented fact or a marked assumption (partners.md section 5).

* The id is ``ResGlobalInfo/HotelReservationIDs/HotelReservationID/@ResID_Value``, an
  integer (documented), kept as its decimal text; it is also the confirmation code.
* ``source_updated_at`` is the reservation's ``LastModifyDateTime`` [assumption: the OTA
  2003/05 attribute; the pages document only the message's ``TimeStamp``], else the
  message's ``TimeStamp`` (an offset timestamp, documented), which the connector lends
  (``context``): a message redelivered later never carries an older state as newer,
  because the stamp is the reservation's, not the delivery's. Without either the record
  is a dead letter: the store's last-write-wins needs a time.
* ``ResStatus``: ``Commit``/``Book``/``Modify`` are confirmed, ``Cancel`` canceled
  [assumption: the OTA codes Booking.com's examples use]; any other is ``other``, kept in
  ``partner_status`` and reported as drift. A cancellation arrives as a modification of
  the same reservation id: the same row, its status and stamp move on.
* Dates are ``RoomStay/TimeSpan/@Start``/``@End``; the hotel is
  ``BasicPropertyInfo/@HotelCode``; guests are the sum of ``GuestCount/@Count``; the
  total is the stay's price (``Total/@AmountAfterTax``), not a payment, so ``total_paid``
  stays empty and only its ``CurrencyCode`` is kept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from syncd.connectors.booking_com import wire
from syncd.models import Reservation, ReservationStatus, canonical_values
from syncd.observability import drift

CHANNEL = "booking.com"
_STATUS = {
    "Commit": ReservationStatus.CONFIRMED,
    "Book": ReservationStatus.CONFIRMED,
    "Modify": ReservationStatus.CONFIRMED,
    "Cancel": ReservationStatus.CANCELED,
}
_RESERVATION = canonical_values(Reservation)
# What a bad reservation raises: a value the canonical model refuses, or one unreadable.
RECORD_ERRORS = (ValueError, TypeError, ValidationError, ArithmeticError)
_ID = "ResGlobalInfo/HotelReservationIDs/HotelReservationID"


def reservation_id(el: ET.Element) -> str | None:
    """The reservation's id if it has a well-formed one (an integer, documented)."""
    found = el.find(_ID)
    value = found.get("ResID_Value") if found is not None else None
    if value is None:
        unique = el.find("UniqueID")
        value = unique.get("ID") if unique is not None else None
    value = value.strip() if value is not None else None
    return value if value and value.isdigit() and value.isascii() else None


def offset_time(text: str | None, what: str) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    if parsed.utcoffset() is None:
        raise ValueError(f"{what} {text!r} has no UTC offset")
    return parsed


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def reservation_values(el: ET.Element, context: str | None = None) -> tuple[Any, ...]:
    """One reservation's canonical values; ``context`` is its message's ``TimeStamp``."""
    ident = reservation_id(el)
    if ident is None:
        raise ValueError("no integer HotelReservationID/@ResID_Value")
    updated = offset_time(el.get("LastModifyDateTime"), "LastModifyDateTime") or offset_time(
        context, "TimeStamp"
    )
    if updated is None:
        raise ValueError("neither LastModifyDateTime nor the message's TimeStamp")
    status = el.get("ResStatus") or ""
    canonical = _STATUS.get(status, ReservationStatus.OTHER)
    if canonical is ReservationStatus.OTHER:
        drift.unknown_value("ResStatus", status)
    stay = el.find("RoomStays/RoomStay")
    if stay is None:
        raise ValueError("no RoomStays/RoomStay")
    hotel = stay.find("BasicPropertyInfo")
    hotel_code = (hotel.get("HotelCode") or "").strip() if hotel is not None else ""
    if not hotel_code:
        raise ValueError("no BasicPropertyInfo/@HotelCode")
    span = stay.find("TimeSpan")
    start = _day(span.get("Start")) if span is not None else None
    end = _day(span.get("End")) if span is not None else None
    nights = (end - start).days if start is not None and end is not None else None
    counts = [int(c.get("Count") or "0") for c in stay.iterfind("GuestCounts/GuestCount")]
    total = stay.find("Total")
    currency = total.get("CurrencyCode") if total is not None else None
    customer = el.find("ResGuests/ResGuest/Profiles/ProfileInfo/Profile/Customer")
    name = email = None
    if customer is not None:
        parts = [(customer.findtext(f"PersonName/{p}") or "").strip() for p in ("GivenName", "Surname")]
        name = " ".join(p for p in parts if p) or None
        email = (customer.findtext("Email") or "").strip() or None
    created = offset_time(el.get("CreateDateTime"), "CreateDateTime")
    # Field order: models.Reservation.
    return _RESERVATION((
        ident, updated, hotel_code, canonical, status, ident, CHANNEL, None, None, start, end, nights,
        sum(counts) if counts else None, name, email, None, None, currency, created,
    ))  # fmt: skip


def values_of_raw(raw: bytes) -> tuple[Any, ...]:
    """A stored reservation's values from its own bytes (no message around it: its
    ``LastModifyDateTime`` must be there)."""
    return reservation_values(wire.element(bytes(raw)))
