"""Cloudbeds webhooks (partners.md section 3): no signature, so the URL is the secret.

Each integration's webhook URL carries a random token (``?token=...``) compared in
constant time; whoever lacks it gets 401. Events are ``object/action``; reservation
events name ``reservationID`` (key casing varies: ``reservationId`` too). Deliveries
carry no id; the body's digest dedupes Cloudbeds' cascading duplicates.
``reservation/deleted`` fetches a record that is gone, which soft-deletes it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from syncd.connectors.webhooks import Event, Target, WebhookScheme, url_token_problem, url_token_verify

TOKEN_PARAM = "token"
RESERVATION_PREFIX = "reservation/"


class _Body(msgspec.Struct, gc=False):
    event: str
    reservationID: Any = None
    reservationId: Any = None


_decoder = msgspec.json.Decoder(_Body)


def parse(body: bytes) -> Event:
    try:
        decoded = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a Cloudbeds webhook: {exc}") from None
    if not decoded.event.startswith(RESERVATION_PREFIX):
        return Event(decoded.event)
    ident = decoded.reservationID if decoded.reservationID is not None else decoded.reservationId
    # Ids are strings holding numbers; webhooks may send integers.
    if isinstance(ident, bool) or not isinstance(ident, int | str) or not str(ident).strip():
        raise ValueError("the event names no reservationID")
    return Event(decoded.event, (Target("reservations", str(ident).strip()),))


SCHEME = WebhookScheme(verify=url_token_verify(TOKEN_PARAM), parse=parse, secret_problem=url_token_problem)
