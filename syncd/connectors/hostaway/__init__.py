"""Hostaway public API v1 (partners.md section 2).

* Auth: OAuth2 client credentials at ``POST /v1/accessTokens`` (form: ``grant_type=
  client_credentials``, ``client_id`` = the integer account id, ``client_secret``,
  ``scope=general``). Tokens live 24 months and there is no refresh token. A new token is
  usable only 1 s after issue; an expired or invalid one is answered **403**, not 401.
* Limits: 15 requests / 10 s per IP (the whole process) and 20 / 10 s per account. Over
  them: 429 with ``{"status": "fail", ...}`` and no rate or Retry-After headers.
* Envelope ``{status: "success"|"fail", result, limit, offset, count, page, totalPages}``;
  booleans are 0/1 integers; ids are integers; times are UTC ``YYYY-MM-DD HH:MM:SS``.
* Lists: listings page by ``limit``/``offset`` and sort by ``latestActivity``; reservations
  page by the cursor ``afterId`` (``offset`` is deprecated) and sort by ``updatedOn``; both
  filter on ``latestActivityStart``/``latestActivityEnd``. ``connector`` explains the walks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncd import errors
from syncd.connectors.base import Connector, PartnerInfo

if TYPE_CHECKING:
    from syncd.connectors.wiring import Wiring

TOKEN_ENDPOINT = "/accessTokens"
SCOPE = "general"


def fail_status(status: int, body: Any) -> errors.PartnerError | None:
    """A 2xx whose envelope says ``"status": "fail"`` is the partner refusing the request,
    never data. Other statuses keep their HTTP meaning (403: token, 429: limits), and bodies
    without a status (the token endpoint's) are not envelopes."""
    if not 200 <= status < 300 or not isinstance(body, dict) or body.get("status") != "fail":
        return None
    message = body.get("message") or body.get("result") or "no message"
    return errors.PartnerRejected(f"Hostaway answered status='fail': {str(message)[:200]}")


def connect(wiring: Wiring) -> Connector:
    """A Hostaway integration: client credentials (the account id and its secret), scope
    ``general``; the 1 s warm-up and 403-means-new-token come from ``PARTNER``."""
    from syncd.connectors.hostaway.connector import HostawayConnector

    wiring.client.auth = wiring.client_credentials(endpoint=TOKEN_ENDPOINT, scope=SCOPE)
    return HostawayConnector(wiring.client, wiring.page_size, log=wiring.log)


PARTNER = PartnerInfo(
    name="hostaway",
    base_url="https://api.hostaway.com/v1",
    token_url="https://api.hostaway.com/v1/accessTokens",
    rate_limits=("20/10s",),
    # Not documented; a few requests in flight keep 20 / 10 s busy without bursts.
    max_concurrency=4,
    page_size=100,
    resources=frozenset({"properties", "reservations", "calendar"}),
    credential_keys=frozenset({"client_id", "client_secret"}),
    app_rate_limits=("15/10s",),
    connect=connect,
    auth_statuses=frozenset({401, 403}),
    token_warmup_s=1.0,
    classify_body=fail_status,
)
