"""Airbnb partner API (partners.md section 4): approved partners only, and public material
is thin. What this package relies on, each fact marked by where it comes from:

* Auth [C] (community client, ~2018): OAuth2 authorization code. The operator opens
  ``https://www.airbnb.com/oauth2/auth?client_id&redirect_uri&scope&state`` and gets a
  one-time code; ``POST /v2/oauth2/authorizations`` with ``{code}`` (or ``{refresh_token}``
  to refresh), the client authenticated with HTTP Basic ``client_id:secret``; the answer is
  ``{access_token, expires_at (unix), refresh_token, user_id}``. Calls send
  ``X-Airbnb-OAuth-Token: <access token>`` and ``X-Airbnb-API-Key: <client id>``.
* [assumption] The refresh token rotates on every refresh and a used one is invalid
  (OAuth 2.1's advice for partner apps): refreshes are single-flight across processes
  and the new token is stored before use (``http.auth.RefreshTokenGrant``). A refused
  refresh token means re-authorization. Assumed because it is the strictest reading: a
  client that survives it survives a partner that lets old tokens live.
* [assumption] The JSON token request carries no ``grant_type``: the community client
  sends ``{code}`` or ``{refresh_token}`` alone.
* [assumption] A client secret the partner rotates arrives by webhook (the field report's
  "Pattern 3"), signed like every other delivery (``webhooks``).
* Listings [C]: ``{listing: {id (int), name, street, city, state, zipcode, country_code,
  lat, lng, person_capacity, bedrooms, bathrooms, listing_price, listing_currency,
  check_in_time (int hour), property_type_category, room_type_category, ...}, metadata}``.
* Reservations, pagination, incremental filters, rate limits, webhook signing: not found;
  ``connector`` and ``webhooks`` say what is assumed and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.connectors.airbnb.webhooks import SCHEME as WEBHOOKS
from syncd.connectors.base import Connector, PartnerInfo

if TYPE_CHECKING:
    from syncd.connectors.wiring import Wiring

TOKEN_ENDPOINT = "/oauth2/authorizations"
AUTHORIZE_URL = "https://www.airbnb.com/oauth2/auth"
TOKEN_HEADER = "X-Airbnb-OAuth-Token"
API_KEY_HEADER = "X-Airbnb-API-Key"
# The grant starts from a refresh token got elsewhere, from a one-time
# ``authorization_code`` consumed on first start, or from a code exchanged by ``syncd
# authorize`` (no third credential); after that the credentials row holds the newest
# refresh token. (The most complete set first: contract tests take the first one found.)
WITH_REFRESH_TOKEN = frozenset({"client_id", "client_secret", "refresh_token"})
WITH_CODE = frozenset({"client_id", "client_secret", "authorization_code"})
CLIENT_ONLY = frozenset({"client_id", "client_secret"})


def connect(wiring: Wiring) -> Connector:
    from syncd.connectors.airbnb.connector import AirbnbConnector
    from syncd.connectors.wiring import TokenRequestShape
    from syncd.http.auth import CallHeaders

    client_id = wiring.credentials["client_id"]
    wiring.client.auth = wiring.refresh_token_grant(
        endpoint=TOKEN_ENDPOINT,
        # [C] JSON body, Basic client auth; [assumption] no grant_type field.
        shape=TokenRequestShape(json_body=True, basic_client_auth=True, grant_type_field=False),
        call_headers=CallHeaders(TOKEN_HEADER, "", {API_KEY_HEADER: client_id}),
    )
    return AirbnbConnector(wiring.client, wiring.page_size, log=wiring.log, client_id=client_id)


PARTNER = PartnerInfo(
    name="airbnb",
    base_url="https://api.airbnb.com/v2",
    token_url="https://api.airbnb.com/v2/oauth2/authorizations",
    # [assumption] Limits are not public: a modest pace and few requests in flight, per
    # account and for the whole app, so an undocumented limit is unlikely to be met.
    rate_limits=("5/s",),
    max_concurrency=2,
    # [assumption] The v2 API's ``_limit`` is capped at 50 in community clients.
    page_size=50,
    resources=frozenset({"properties", "reservations"}),
    credential_keys=WITH_REFRESH_TOKEN,
    app_rate_limits=("20/s",),
    app_max_concurrency=8,
    connect=connect,
    other_credential_sets=(WITH_CODE, CLIENT_ONLY),
    webhooks=WEBHOOKS,
)
