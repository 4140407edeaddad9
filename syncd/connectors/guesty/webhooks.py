"""Guesty webhooks (partners.md section 1): Svix-signed, ``{event, reservation|listing, meta}``.

Guesty signs with Svix (the secret comes from ``GET /webhooks-v2/secret`` as
``whsec_...``): ``syncd.svix`` verifies, and ``svix-id`` is the delivery id. Events acted
on name a reservation or a listing by ``_id``; the rest (``guest.*``, ``task.*``,
messages, payments, calendars) are acknowledged and ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec

from syncd.connectors.webhooks import (
    Event,
    Target,
    WebhookScheme,
    svix_new_secret,
    svix_secret_problem,
    svix_verify,
)

# Legacy names and their v2 successors (``.v2``: same envelope, plus publishedAt).
RESERVATION_EVENTS = frozenset(
    {"reservation.new", "reservation.updated", "reservation.created.v2", "reservation.updated.v2"}
)
LISTING_EVENTS = frozenset({"listing.new", "listing.updated", "listing.removed"})


class _Ref(msgspec.Struct, gc=False):
    id: Any = msgspec.field(default=None, name="_id")


class _Body(msgspec.Struct, gc=False):
    event: str
    reservation: _Ref | None = None
    listing: _Ref | None = None


_decoder = msgspec.json.Decoder(_Body)


def parse(body: bytes) -> Event:
    try:
        decoded = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a Guesty webhook: {exc}") from None
    name = decoded.event
    if name in RESERVATION_EVENTS:
        return Event(name, (Target("reservations", _id(decoded.reservation, "reservation")),))
    if name in LISTING_EVENTS:
        return Event(name, (Target("properties", _id(decoded.listing, "listing")),))
    return Event(name)


def _id(ref: _Ref | None, what: str) -> str:
    if ref is None or not isinstance(ref.id, str) or not ref.id:
        raise ValueError(f"the event names no {what} _id")
    return ref.id


SCHEME = WebhookScheme(
    verify=svix_verify, parse=parse, secret_problem=svix_secret_problem, new_secret=svix_new_secret
)
