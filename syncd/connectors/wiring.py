"""What a partner package's ``connect`` receives: one integration, wired but not yet authenticated.

The registry builds the integration's ``PartnerClient`` (limits, breakers, retries, the
partner's error rules) and hands it over with everything a driver and its auth need. The
package decides the auth scheme, usually from which credential set is configured, and
builds it with the helpers here, so token caps, warm-up, persistence and the token-request
metric behave the same for every partner.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd import errors
from syncd.config import PartnerSettings
from syncd.connectors.base import PartnerInfo
from syncd.http.auth import (
    BEARER,
    CallHeaders,
    ClientCredentials,
    HeaderAuth,
    RefreshTokenGrant,
    TokenCap,
    TokenFetch,
    TokenStore,
)
from syncd.http.client import PartnerClient
from syncd.observability.metrics import Metrics


@dataclass(frozen=True)
class TokenRequestShape:
    """How a partner's token endpoint wants its request, when not the OAuth2 default (a
    form with ``grant_type`` and the client's id and secret in the body, retried on
    transient errors): a JSON body, the client authenticated with HTTP Basic, no
    ``grant_type`` (the partner tells the grant by the field it gets: ``code``,
    ``refresh_token``). Such a request is sent once: it spends a single-use input."""

    json_body: bool = False
    basic_client_auth: bool = False
    grant_type_field: bool = True


FORM = TokenRequestShape()


@dataclass(frozen=True)
class Wiring:
    """One integration of ``info``'s partner, as the registry prepared it."""

    info: PartnerInfo
    integration_id: str
    client: PartnerClient
    credentials: Mapping[str, str]  # decrypted, exactly one of the partner's credential sets
    tokens: TokenStore
    settings: PartnerSettings
    page_size: int  # the configured one, else the partner's documented one
    metrics: Metrics
    log: Any
    # One of ``info.versions``: pinned by the integration or chosen by the partner's rollout.
    api_version: str
    # The resources the integration syncs (a connector may skip work for the others).
    resources: frozenset[str] = frozenset()

    @property
    def token_url(self) -> str:
        """The configured token endpoint, else the documented one."""
        url = self.settings.token_url or self.info.token_url
        if url is None:
            raise errors.ConfigError([(f"partners.{self.info.name}.token_url", "required for this auth")])
        return str(url)

    @property
    def token_cap(self) -> TokenCap | None:
        """The partner's token-request cap, enforced locally before asking."""
        cap = self.info.token_cap
        return TokenCap(*cap) if cap is not None else None

    def token_fetch(
        self, endpoint: str, shape: TokenRequestShape = FORM, *, once: bool = False
    ) -> TokenFetch:
        """A POST to the token URL (``endpoint``: its label in metrics and logs) in the
        partner's ``shape``, each request counted in ``syncd_token_requests_total`` by
        outcome. The grants build OAuth2's form; the shape moves its fields. ``once`` (and
        any JSON shape): never resent by the client (a grant that spends its input)."""
        client, url = self.client, self.token_url

        async def fetch(form: dict[str, str]) -> dict[str, Any]:
            if not shape.json_body and not shape.basic_client_auth:
                if once:
                    sent: dict[str, Any] = await client.post_once(url, endpoint, form=form)
                    return sent
                body: dict[str, Any] = await client.post_form_json(url, endpoint, form)
                return body
            fields = dict(form)
            if not shape.grant_type_field:
                fields.pop("grant_type", None)
            headers: dict[str, str] = {}
            if shape.basic_client_auth:
                pair = f"{fields.pop('client_id', '')}:{fields.pop('client_secret', '')}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            if shape.json_body:
                answer: dict[str, Any] = await client.post_once(
                    url, endpoint, json_body=fields, headers=headers
                )
            else:
                answer = await client.post_once(url, endpoint, form=fields, headers=headers)
            return answer

        return counted(fetch, self.info.name, self.metrics)

    def client_credentials(
        self, *, endpoint: str, scope: str | None, exchange: TokenFetch | None = None
    ) -> ClientCredentials:
        """OAuth2 client_credentials from the ``client_id``/``client_secret`` credentials;
        ``exchange`` replaces the form POST for a partner whose token endpoint speaks
        another dialect (it gets the same form and answers an OAuth2-shaped body)."""
        fetch = counted(exchange, self.info.name, self.metrics) if exchange else self.token_fetch(endpoint)
        return ClientCredentials(
            integration_id=self.integration_id,
            client_id=self.credentials["client_id"],
            client_secret=self.credentials["client_secret"],
            scope=scope,
            fetch=fetch,
            store=self.tokens,
            refresh_buffer_s=self.settings.token_refresh_buffer_s,
            warmup_s=self.info.token_warmup_s,
            cap=self.token_cap,
        )

    def refresh_token_grant(
        self,
        *,
        endpoint: str,
        shape: TokenRequestShape = FORM,
        call_headers: CallHeaders = BEARER,
    ) -> RefreshTokenGrant:
        """OAuth2 refresh_token grant from ``client_id``/``client_secret`` and a
        ``refresh_token`` or a one-time ``authorization_code`` credential (or neither: the
        grant then starts from ``syncd authorize``); the rotated refresh token is persisted
        before the access token is used."""
        return RefreshTokenGrant(
            integration_id=self.integration_id,
            client_id=self.credentials["client_id"],
            client_secret=self.credentials["client_secret"],
            initial_refresh_token=self.credentials.get("refresh_token"),
            authorization_code=self.credentials.get("authorization_code"),
            # Sent once: a resend after the partner acted presents a used refresh token.
            fetch=self.token_fetch(endpoint, shape, once=True),
            store=self.tokens,
            refresh_buffer_s=self.settings.token_refresh_buffer_s,
            warmup_s=self.info.token_warmup_s,
            cap=self.token_cap,
            call_headers=call_headers,
        )

    def api_key(self, header: str, key: str = "api_key") -> HeaderAuth:
        """The ``key`` credential sent as ``header`` (``x-api-key``) on every request."""
        return HeaderAuth(header, self.credentials[key])


def counted(fetch: TokenFetch, partner: str, metrics: Metrics) -> TokenFetch:
    """``fetch`` feeding ``syncd_token_requests_total``: each token request sent, by outcome."""

    async def counted_fetch(form: dict[str, str]) -> dict[str, Any]:
        try:
            body = await fetch(form)
        except errors.PartnerError as exc:
            metrics.token_requests.labels(partner, exc.error_class.value).inc()
            raise
        metrics.token_requests.labels(partner, "ok").inc()
        return body

    return counted_fetch
