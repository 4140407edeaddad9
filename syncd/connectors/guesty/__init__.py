"""Guesty Open API (partners.md section 1).

OAuth2 client credentials (24 h tokens, at most 5 per key per 24 h: persist them), limits
15/s, 120/min, 5000/h per account, ``limit``/``skip`` pagination (max 100), 24-hex
``_id`` strings, ISO UTC timestamps with milliseconds.
"""

from __future__ import annotations

from syncd.connectors.base import PartnerInfo

INFO = PartnerInfo(
    name="guesty",
    base_url="https://open-api.guesty.com/v1",
    token_url="https://open-api.guesty.com/oauth2/token",
    rate_limits=("15/s", "120/min", "5000/h"),
    max_concurrency=15,
    page_size=100,
    resources=frozenset({"properties", "reservations"}),
    credential_keys=frozenset({"client_id", "client_secret"}),
    max_token_requests_per_day=5,
)
