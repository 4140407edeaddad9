"""Guesty Open API (partners.md section 1).

OAuth2 client credentials (24 h tokens, at most 5 per key per 24 h: persist them), limits
15/s, 120/min, 5000/h per account, ``limit``/``skip`` pagination (max 100), 24-hex
``_id`` strings, ISO UTC timestamps with milliseconds.

Listing photos are a child resource (``photos``): the list's ``pictures`` digest
(``adapter.photos_fingerprint``) tells which listings' photos to read again.

Two API versions: ``legacy`` (the default) reads reservations from ``/reservations``,
incrementally by ``lastUpdatedAt`` (deprecated, removal 1 Mar 2027); ``v3`` from
``/reservations-v3/search``, which has no update filter (``reservations_v3``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.connectors.base import Connector, PartnerInfo
from syncd.connectors.guesty.webhooks import SCHEME as WEBHOOKS

if TYPE_CHECKING:
    from syncd.connectors.wiring import Wiring

TOKEN_ENDPOINT = "/oauth2/token"
SCOPE = "open-api"
VERSIONS = ("legacy", "v3")


def connect(wiring: Wiring) -> Connector:
    """A Guesty integration: client credentials against the token URL, scope ``open-api``;
    the driver of the integration's API version."""
    from syncd.connectors.guesty.connector import GuestyConnector
    from syncd.connectors.guesty.reservations_v3 import VERSION, GuestyV3Connector

    wiring.client.auth = wiring.client_credentials(endpoint=TOKEN_ENDPOINT, scope=SCOPE)
    driver = GuestyV3Connector if wiring.api_version == VERSION else GuestyConnector
    # The pictures digest costs every listing of every page: only when photos are synced.
    return driver(wiring.client, wiring.page_size, log=wiring.log, photos="photos" in wiring.resources)


PARTNER = PartnerInfo(
    name="guesty",
    base_url="https://open-api.guesty.com/v1",
    token_url="https://open-api.guesty.com/oauth2/token",
    rate_limits=("15/s", "120/min", "5000/h"),
    max_concurrency=15,
    page_size=100,
    resources=frozenset({"properties", "reservations", "photos"}),
    credential_keys=frozenset({"client_id", "client_secret"}),
    max_token_requests_per_day=5,
    connect=connect,
    versions=VERSIONS,
    webhooks=WEBHOOKS,
)
