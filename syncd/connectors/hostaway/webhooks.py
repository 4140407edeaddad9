"""Hostaway unified webhooks (partners.md section 2): optional HTTP Basic, no signature.

Hostaway signs nothing and sends no timestamp: the only proof is the Basic credentials
configured on the webhook (``login:password``), which syncd requires before it turns the
route on. Deliveries carry no id either; a redelivery repeats its body, so the body's
digest is the delivery id. Every modification fires, duplicates and reordering happen;
the targeted fetch reads the current reservation, so neither matters. Unknown event types
are answered 200, as Hostaway asks (other 4xx are not retried).
"""

from __future__ import annotations

from typing import Any

import msgspec

from syncd.connectors.webhooks import (
    Event,
    Target,
    WebhookScheme,
    basic_new_secret,
    basic_secret_problem,
    basic_verify,
)

RESERVATION_EVENTS = frozenset({"reservation.created", "reservation.updated"})


class _Data(msgspec.Struct, gc=False):
    id: Any = None


class _Body(msgspec.Struct, gc=False):
    # ASSUMPTION: the unified payload is {"event", "data": <the reservation>} (partners.md
    # names the events, not the envelope).
    event: str
    data: _Data | None = None


_decoder = msgspec.json.Decoder(_Body)


def parse(body: bytes) -> Event:
    try:
        decoded = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a Hostaway webhook: {exc}") from None
    if decoded.event not in RESERVATION_EVENTS:
        return Event(decoded.event)
    ident = decoded.data.id if decoded.data is not None else None
    # Ids are integers; a digit string is tolerated, anything else names nothing.
    number = str(ident) if isinstance(ident, int | str) and not isinstance(ident, bool) else ""
    if not number.isdigit():
        raise ValueError("the event names no reservation id")
    return Event(decoded.event, (Target("reservations", str(int(number))),))


SCHEME = WebhookScheme(
    verify=basic_verify, parse=parse, secret_problem=basic_secret_problem, new_secret=basic_new_secret
)
