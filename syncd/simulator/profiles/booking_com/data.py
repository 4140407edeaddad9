"""One Booking.com account's reservation queues (partners.md section 5).

Each reservation has a revision and a state; its OTA element is rendered from that state
alone, so the bytes a poll delivers and the bytes ``truth`` names are the same. Queue
state per account:

* ``new``: reservations never acknowledged (answered by ``GET /ota/OTA_HotelResNotif``);
  a reservation changed while in it stays there, with its newest state ("re-delivered as
  new").
* ``modified``: acknowledged reservations changed since (``GET
  /ota/OTA_HotelResModifyNotif``), a ``Modify`` or ``Cancel`` each.
* ``POST`` of an ``..RS`` removes the ids it names from that queue (success or error; an
  id not pending there is ignored, so a repeated acknowledgement is harmless).

Counters: ``deliveries`` (reservations handed out by polls), ``redeliveries`` (the same
reservation at the same revision handed out again: after a lost answer or a missing
acknowledgement), ``acks`` / ``error_acks`` (ids acknowledged), ``ack_posts``.

``LastModifyDateTime`` comes from a logical clock that moves forward one second per
change, so every revision of a reservation is strictly newer than the one before.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

OTA_NS = "http://www.opentravel.org/OTA/2003/05"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_ID = 4_000_000_000
HOTELS = 40
GIVEN = ("Ann", "Bo", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana", "Ivo", "Jun")
SURNAMES = ("Lee", "Moreau", "Novak", "Okafor", "Park", "Quist", "Rossi", "Sato", "Tan", "Ueda")
CURRENCIES = ("EUR", "GBP", "USD")


@dataclass(frozen=True, slots=True)
class Stay:
    """A reservation's state: everything its element shows."""

    id: int
    revision: int
    status: str  # Commit, Modify, Cancel
    hotel: int
    start: date
    nights: int
    guests: int
    amount_cents: int
    currency: str
    given: str
    surname: str
    created: int  # seconds after EPOCH
    modified: int
    bad: bool = False  # rendered with an impossible date: the connector must dead-letter it


def _ts(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def element(s: Stay) -> bytes:
    start = "2026-13-45" if s.bad else s.start.isoformat()
    end = (s.start + timedelta(days=s.nights)).isoformat()
    amount = f"{s.amount_cents // 100}.{s.amount_cents % 100:02d}"
    return (
        f'<HotelReservation ResStatus="{s.status}" CreateDateTime="{_ts(s.created)}"'
        f' LastModifyDateTime="{_ts(s.modified)}">'
        f'<UniqueID Type="14" ID="{s.id}"/>'
        "<RoomStays><RoomStay>"
        f'<TimeSpan Start="{start}" End="{end}"/>'
        f'<GuestCounts><GuestCount AgeQualifyingCode="10" Count="{s.guests}"/></GuestCounts>'
        f'<Total AmountAfterTax="{amount}" CurrencyCode="{s.currency}"/>'
        f'<BasicPropertyInfo HotelCode="{1_000_000 + s.hotel}"/>'
        "</RoomStay></RoomStays>"
        "<ResGuests><ResGuest><Profiles><ProfileInfo><Profile><Customer><PersonName>"
        f"<GivenName>{_escape(s.given)}</GivenName><Surname>{_escape(s.surname)}</Surname>"
        f"</PersonName><Email>{s.given.lower()}.{s.id}@guest.example</Email></Customer></Profile>"
        "</ProfileInfo></Profiles></ResGuest></ResGuests>"
        "<ResGlobalInfo><HotelReservationIDs>"
        f'<HotelReservationID ResID_Type="14" ResID_Value="{s.id}" ResID_Date="{_ts(s.created)[:19]}"/>'
        "</HotelReservationIDs></ResGlobalInfo>"
        "</HotelReservation>"
    ).encode()


def message(root: str, stays: list[Stay], now: int) -> bytes:
    body = b"".join(element(s) for s in stays)
    return (
        (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{OTA_NS}" TimeStamp="{_ts(now)}"'
            f' Target="Production" Version="2.001">\n<HotelReservations>'
        ).encode()
        + body
        + f"</HotelReservations>\n</{root}>\n".encode()
    )


class BookingAccount:
    """``size`` reservations waiting in the new queue; ``per_poll`` handed out per poll."""

    def __init__(self, seed: int, size: int, per_poll: int = 50, bad_every: int = 0) -> None:
        self.seed, self.per_poll, self.bad_every = seed, per_poll, bad_every
        self.clock = 0
        self.stays: dict[int, Stay] = {}
        self.new: dict[int, None] = {}  # insertion-ordered sets
        self.modified: dict[int, None] = {}
        self.delivered: set[tuple[int, int]] = set()  # (id, revision) handed out at least once
        self.deliveries = 0
        self.redeliveries = 0
        self.redelivered_ids: Counter[int] = Counter()
        self.acks = 0
        self.error_acks = 0
        self.ack_posts = 0
        self.error_acked: set[int] = set()  # ids ever acknowledged with an error
        self._rng = random.Random(seed)
        for _ in range(size):
            self._book()

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def _book(self) -> Stay:
        rng, n = self._rng, len(self.stays)
        now = self._tick()
        stay = Stay(
            id=FIRST_ID + self.seed * 1_000_000 + n,
            revision=1,
            status="Commit",
            hotel=rng.randrange(HOTELS),
            start=date(2027, 1, 1) + timedelta(days=rng.randrange(365)),
            nights=rng.randint(1, 14),
            guests=rng.randint(1, 6),
            amount_cents=rng.randint(5_000, 500_000),
            currency=rng.choice(CURRENCIES),
            given=rng.choice(GIVEN),
            surname=rng.choice(SURNAMES),
            created=now,
            modified=now,
            bad=self.bad_every > 0 and n % self.bad_every == self.bad_every - 1,
        )
        self.stays[stay.id] = stay
        self.new[stay.id] = None
        return stay

    def _change(self, stay: Stay, **changes: object) -> None:
        changed = replace(stay, revision=stay.revision + 1, modified=self._tick(), **changes)  # type: ignore[arg-type]
        self.stays[stay.id] = changed
        if stay.id not in self.new:  # acknowledged once: a modification message
            self.modified[stay.id] = None

    # -- the API -------------------------------------------------------------------------

    def poll(self, queue: str) -> list[Stay]:
        pending = self.new if queue == "new" else self.modified
        out = [self.stays[i] for i in list(pending)[: self.per_poll]]
        for s in out:
            key = (s.id, s.revision)
            self.deliveries += 1
            if key in self.delivered:
                self.redeliveries += 1
                self.redelivered_ids[s.id] += 1
            self.delivered.add(key)
        return out

    def acknowledge(self, queue: str, ids: list[int], error: bool) -> int:
        pending = self.new if queue == "new" else self.modified
        self.ack_posts += 1
        done = 0
        for i in ids:
            if i in pending:
                del pending[i]
                done += 1
                if error:
                    self.error_acked.add(i)
        if error:
            self.error_acks += done
        else:
            self.acks += done
        return done

    def mutate(self, count: int, seed: int) -> dict[str, int]:
        """About a third each: new bookings, modifications (dates, guests), cancellations."""
        rng = random.Random(seed)
        booked = modified = canceled = 0
        live = [i for i, s in self.stays.items() if s.status != "Cancel"]
        for _ in range(count):
            kind = rng.randrange(3)
            if kind == 0 or not live:
                live.append(self._book().id)
                booked += 1
                continue
            stay = self.stays[rng.choice(live)]
            if stay.status == "Cancel":
                continue
            if kind == 1:
                nights = max(1, stay.nights + rng.choice((-1, 1, 2)))
                self._change(stay, status="Modify", nights=nights, guests=rng.randint(1, 6))
                modified += 1
            else:
                self._change(stay, status="Cancel")
                canceled += 1
        return {"booked": booked, "modified": modified, "canceled": canceled}

    def pending(self) -> dict[str, int]:
        return {"new": len(self.new), "modified": len(self.modified)}
