"""Booking.com Connectivity APIs (partners.md section 5): documented facts this package relies on.

* Auth: a machine account's client id and secret exchanged at
  ``POST https://connectivity-authentication.booking.com/token-based-authentication/exchange``
  for a JWT (claims ``sub, aud, iss, exp, iat``) sent as a Bearer token. It expires after
  1 h and at most 30 may be issued per hour: tokens are stored and shared by every
  process (``ClientCredentials``), the cap enforced locally (``max_token_requests``).
  401 means authentication failed (a new token, the request sent once more); 403 means
  "this account doesn't have access to this property": an error of its own, no refresh.
* Reservations are pull-only, a queue per kind over OTA XML: ``GET
  /ota/OTA_HotelResNotif`` answers the new reservations not acknowledged yet, ``POST`` of
  an ``OTA_HotelResNotifRS`` acknowledges them (success or error per
  ``HotelReservationID``); modifications and cancellations go through
  ``/ota/OTA_HotelResModifyNotif`` alike. A reservation changed before it was
  acknowledged comes again as new. Poll every 20 s, wait 5 s after an acknowledgement,
  never two calls at once. What is not acknowledged within 30 min is e-mailed to the
  property (so an error acknowledgement still reaches the hotel).
* Ids are integers; messages carry an offset ``TimeStamp``. Rate limits: not found (the
  pace above is the limit).

The token exchange's request and answer shapes are not on the public pages
[assumption]: a JSON ``{"client_id", "client_secret"}`` body, answered with a JSON
``{"jwt": ...}`` (``access_token`` accepted too); the lifetime is read from the JWT's own
``exp`` claim (decoded, not verified: the partner verifies it), else the documented hour.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

import orjson

from syncd import errors
from syncd.connectors.base import Connector, PartnerInfo

if TYPE_CHECKING:
    from syncd.connectors.wiring import Wiring
    from syncd.http.auth import TokenFetch
    from syncd.http.client import PartnerClient

TOKEN_ENDPOINT = "/token-based-authentication/exchange"
TOKEN_TTL_S = 3600.0
MAX_TOKENS_PER_HOUR = 30


def jwt_claims(token: str) -> dict[str, Any]:
    """The JWT's payload claims, unverified ({} when it is not a readable JWT)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def exchange(client: PartnerClient, url: str) -> TokenFetch:
    """The token exchange, answering the OAuth2 shape ``ClientCredentials`` reads."""

    async def fetch(form: dict[str, str]) -> dict[str, Any]:
        document = {"client_id": form["client_id"], "client_secret": form["client_secret"]}
        body = await client.post_json(url, TOKEN_ENDPOINT, document)
        token = body.get("jwt") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise errors.AuthFailed("token exchange answered no jwt")
        exp, now = jwt_claims(token).get("exp"), time.time()
        lifetime = TOKEN_TTL_S
        if isinstance(exp, int | float) and not isinstance(exp, bool) and exp > now:
            lifetime = float(exp) - now
        return {"access_token": token, "token_type": "Bearer", "expires_in": min(lifetime, TOKEN_TTL_S)}

    return fetch


def connect(wiring: Wiring) -> Connector:
    """The machine account's JWT, and the queue driver paced as configured."""
    from syncd.connectors.booking_com.connector import BookingConnector, Pace

    auth = wiring.client_credentials(
        endpoint=TOKEN_ENDPOINT, scope=None, exchange=exchange(wiring.client, wiring.token_url)
    )
    wiring.client.auth = auth
    settings = wiring.settings
    pace = Pace.of(settings.queue_empty_poll_s, settings.queue_ack_pause_s)
    return BookingConnector(wiring.client, pace, log=wiring.log)


PARTNER = PartnerInfo(
    name="booking_com",
    base_url="https://secure-supply-xml.booking.com/hotels",
    token_url="https://connectivity-authentication.booking.com/token-based-authentication/exchange",
    # No documented rate; the documented pace (Pace) is the limit, and "no concurrency".
    rate_limits=(),
    max_concurrency=1,
    page_size=100,
    resources=frozenset({"reservations"}),
    credential_keys=frozenset({"client_id", "client_secret"}),
    max_token_requests=(MAX_TOKENS_PER_HOUR, 3600.0),
    connect=connect,
    queue=True,
)
