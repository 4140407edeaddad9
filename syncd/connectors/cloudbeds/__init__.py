"""Cloudbeds PMS API v1.3 (partners.md section 3): documented facts this package relies on.

* RPC-style methods, ``GET {base}/{method}`` (``getHotels``, ``getReservations``, ...); every
  request is property-scoped (``propertyID``, a comma-list on ``getReservations``).
* Auth: an API key ``x-api-key: cbat_...`` (preferred, no expiry) or OAuth2 with 8 h
  access tokens and *sliding* refresh tokens (a used refresh token is gone, so a refresh
  must be single-flight and its result committed before use: ``wiring.refresh_token_grant``).
* Limits: 10 req/s for tech partners, 5 req/s for properties, per client id; a breach
  risks suspension of the credentials, so we declare the lower figure and stay below it.
* Errors: HTTP 200 ``{"success": false, "message": ...}`` for business errors
  (``classify_body``); 401 ``{"error": "access_denied"}``.
* Payloads: ids are strings holding numbers; datetimes ``YYYY-MM-DD HH:MM:SS`` in the
  *property's* local time (``propertyTimezone`` from ``getHotels``); dates ``YYYY-MM-DD``.

What is a canonical ``Property`` here: a Cloudbeds *property* (a hotel, as listed by
``getHotels``). Reservations name their ``propertyID`` (not always a room type: one
reservation can hold rooms of several types), the timezone and currency that give a
reservation its meaning are per property, and a group or partner key reaches any number
of properties, so an account of 10,000 listings is 10,000 properties. Room types would
be finer, but no list payload ties a reservation to exactly one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncd import errors
from syncd.connectors.base import Connector, PartnerInfo
from syncd.connectors.cloudbeds.webhooks import SCHEME as WEBHOOKS

if TYPE_CHECKING:
    from syncd.connectors.wiring import Wiring

TOKEN_ENDPOINT = "/access_token"
OAUTH = frozenset({"client_id", "client_secret", "refresh_token"})
# Messages of success:false bodies that mean the credentials (or their grant) are dead.
_AUTH_WORDS = ("access", "token", "not active", "authoriz", "api key", "credential")


def classify_body(status: int, body: Any) -> errors.PartnerError | None:
    """The error a success status carrying ``{"success": false, "message"}`` is: Cloudbeds
    answers business errors, some dead grants among them, with HTTP 200. Read from the
    message: a record "not found" is the RPC's 404."""
    if not 200 <= status < 300 or not isinstance(body, dict) or body.get("success") is not False:
        return None
    message = body.get("message")
    text = message[:200] if isinstance(message, str) else "success: false"
    lowered = text.lower()
    if "not found" in lowered:
        return errors.PartnerRejected(text, status=404)
    if "rate limit" in lowered or "too many" in lowered:
        return errors.RateLimited(text, status=status)
    if any(word in lowered for word in _AUTH_WORDS):
        return errors.AuthFailed(text, status=status)
    return errors.PartnerRejected(text, status=status)


def connect(wiring: Wiring) -> Connector:
    """An API key (``x-api-key``), or OAuth2 with sliding refresh tokens."""
    from syncd.connectors.cloudbeds.connector import CloudbedsConnector

    if "api_key" in wiring.credentials:
        wiring.client.auth = wiring.api_key("x-api-key")
    else:
        wiring.client.auth = wiring.refresh_token_grant(endpoint=TOKEN_ENDPOINT)
    return CloudbedsConnector(wiring.client, wiring.page_size)


PARTNER = PartnerInfo(
    name="cloudbeds",
    base_url="https://api.cloudbeds.com/api/v1.3",
    token_url="https://api.cloudbeds.com/api/v1.3/access_token",
    # Per client id, i.e. the whole app: the property figure (5/s), not the partner one.
    rate_limits=("5/s",),
    max_concurrency=2,
    page_size=100,
    resources=frozenset({"properties", "reservations"}),
    credential_keys=frozenset({"api_key"}),
    app_rate_limits=("5/s",),
    app_max_concurrency=4,
    connect=connect,
    other_credential_sets=(OAUTH,),
    classify_body=classify_body,
    webhooks=WEBHOOKS,
)
