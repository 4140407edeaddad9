"""Airbnb webhooks. Signing is not public ("not found" in partners.md section 4), so:

* [assumption] ``X-Airbnb-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``,
  the timestamped shape several partners use (Stripe's): it signs the raw body and the
  time together, so a captured delivery cannot be replayed outside the tolerance, and it
  needs nothing but a shared secret. The generic ``hmac_timestamped_verify`` checks it.
* [assumption] Bodies are ``{"event": "<object>.<action>", "object_id": ...}`` for
  ``reservation.*`` (the confirmation code) and ``listing.*`` (the integer id); each names
  a record the daemon then fetches. ``client_secret.rotated`` carries ``client_secret``:
  the partner rotated the app's secret (the field report's "Pattern 3"), adopted through
  ``Connector.rotate_secret``. Other events are acknowledged and ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec

from syncd.connectors.webhooks import (
    Event,
    Target,
    WebhookScheme,
    hmac_secret_problem,
    hmac_timestamped_verify,
)

SIGNATURE_HEADER = "x-airbnb-signature"
ROTATED = "client_secret.rotated"
_RESOURCES = {"reservation": "reservations", "listing": "properties"}


class _Body(msgspec.Struct, gc=False):
    event: str
    object_id: Any = None
    client_secret: Any = None


_decoder = msgspec.json.Decoder(_Body)


def parse(body: bytes) -> Event:
    try:
        decoded = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not an Airbnb webhook: {exc}") from None
    name = decoded.event[:100]
    if name == ROTATED:
        secret = decoded.client_secret
        if not isinstance(secret, str) or not secret.strip():
            raise ValueError("client_secret.rotated carries no client_secret")
        return Event(name, new_client_secret=secret.strip())
    resource = _RESOURCES.get(name.partition(".")[0])
    if resource is None:
        return Event(name)
    ident = decoded.object_id
    if isinstance(ident, bool) or not isinstance(ident, int | str) or not str(ident).strip():
        raise ValueError(f"{name} names no object_id")
    if resource == "properties" and not str(ident).strip().isdigit():
        raise ValueError("a listing's object_id is an integer")
    return Event(name, (Target(resource, str(ident).strip()),))


SCHEME = WebhookScheme(
    verify=hmac_timestamped_verify(SIGNATURE_HEADER), parse=parse, secret_problem=hmac_secret_problem
)
