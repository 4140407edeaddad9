"""Seam, a smart-lock provider (partners.md section 8): the push direction.

* Auth: ``Authorization: Bearer <API key>`` (the ``api_key`` credential).
* RPC-style endpoints, POST with a JSON body: ``/access_codes/create|update|delete|get|list``
  and ``/devices/list``; lists page by ``limit`` + ``page_cursor`` and answer
  ``pagination{next_page_cursor, has_next_page, next_page_url}``.
* Limits are per device: 10 creations, 10 updates and 20 deletions per minute; beyond
  them a 429 (nothing was done: retried after Retry-After).
* Codes settle asynchronously: ``setting`` until the lock confirms (``set``), or
  ``errors[]`` when it cannot (``failed_to_set_on_device``); Svix webhooks announce both.

A Seam integration syncs nothing: it follows another integration's reservations (its
``locks`` section) and pushes one access code per live stay (``syncd.engine.access``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.connectors.base import Connector, PartnerInfo
from syncd.connectors.seam.webhooks import SCHEME as WEBHOOKS

if TYPE_CHECKING:
    from syncd.connectors.wiring import Wiring


def connect(wiring: Wiring) -> Connector:
    from syncd.connectors.seam.connector import SeamConnector
    from syncd.http.auth import HeaderAuth
    from syncd.observability.logging import register_secret

    key = wiring.credentials["api_key"]
    register_secret(key)  # the bare key too, not only the header's value
    wiring.client.auth = HeaderAuth("Authorization", f"Bearer {key}")
    return SeamConnector(wiring.client)


PARTNER = PartnerInfo(
    name="seam",
    base_url="https://connect.getseam.com",
    token_url=None,
    # Per device, enforced by Seam and answered 429; the account has no documented limit.
    # [assumption] 5 requests / s per account keeps a burst of pushes polite.
    rate_limits=("5/s",),
    max_concurrency=4,
    page_size=100,
    resources=frozenset(),
    credential_keys=frozenset({"api_key"}),
    connect=connect,
    access_codes=True,
    webhooks=WEBHOOKS,
)
