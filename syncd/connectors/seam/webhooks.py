"""Seam's webhooks (partners.md section 8): Svix-signed events about access codes.

``access_code.set_on_device`` and ``access_code.failed_to_set_on_device`` (and
``removed_from_device``) name the code by ``access_code_id``: each becomes a targeted
task that asks Seam for that code and records whether it settled (never more: what a
code should be is the reservation's push to decide). Other events are acknowledged and
ignored.
"""

from __future__ import annotations

import msgspec

from syncd.connectors.webhooks import (
    Event,
    Target,
    WebhookScheme,
    svix_new_secret,
    svix_secret_problem,
    svix_verify,
)

# The resource name a code event's targets carry (the receiver makes a push task of them).
ACCESS_CODES = "access_codes"
SETTLING_EVENTS = frozenset(
    {
        "access_code.set_on_device",
        "access_code.failed_to_set_on_device",
        "access_code.removed_from_device",
        "access_code.delay_in_setting_on_device",
    }
)


class _Body(msgspec.Struct):
    event_type: str
    access_code_id: str | None = None


_DECODE = msgspec.json.Decoder(_Body)


def parse(body: bytes) -> Event:
    try:
        event = _DECODE.decode(body)
    except msgspec.MsgspecError as exc:
        raise ValueError(f"not a Seam event: {exc}") from None
    if event.event_type not in SETTLING_EVENTS or not event.access_code_id:
        return Event(event.event_type)
    return Event(event.event_type, (Target(ACCESS_CODES, event.access_code_id),))


SCHEME = WebhookScheme(
    verify=svix_verify, parse=parse, secret_problem=svix_secret_problem, new_secret=svix_new_secret
)
