"""Partner name -> documented facts and driver factory. A new partner is one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from syncd import errors
from syncd.config import BreakerSettings, IntegrationSettings, PartnerSchema, PartnerSettings
from syncd.connectors import guesty
from syncd.connectors.base import Connector, PartnerInfo
from syncd.http.auth import ClientCredentials, TokenFetch, TokenStore
from syncd.http.breaker import BreakerPolicy
from syncd.http.budget import AimdPolicy
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.egress import Egress
from syncd.http.guards import Guards, LimitSpec
from syncd.http.tiers import parse_tier
from syncd.observability.metrics import Metrics

PARTNERS: dict[str, PartnerInfo] = {info.name: info for info in (guesty.INFO,)}


def schemas() -> dict[str, PartnerSchema]:
    return {name: info.schema for name, info in PARTNERS.items()}


def limit_spec(info: PartnerInfo, partner: PartnerSettings) -> LimitSpec:
    """The documented limits, overridden by configuration where it sets them."""
    tiers = partner.rate_limits if partner.rate_limits is not None else info.rate_limits
    return LimitSpec(
        tiers=[parse_tier(t) for t in tiers],
        app_tiers=[parse_tier(t) for t in info.app_rate_limits],
        safety_factor=partner.safety_factor,
        max_concurrency=partner.max_concurrency or info.max_concurrency,
        app_max_concurrency=info.app_max_concurrency,
        breaker=breaker_policy(partner.breaker, partner.breaker.failure_threshold),
        partner_breaker=breaker_policy(partner.breaker, partner.breaker.partner_failure_threshold),
        aimd=AimdPolicy(**partner.adaptive.model_dump()),
    )


def egress(partner: PartnerSettings, environ: Mapping[str, str]) -> Egress:
    """How the partner's requests leave: its configured proxy and CA bundle, and the
    environment's proxy and trust-store variables unless ``trust_env`` is off."""
    return Egress(
        proxy=partner.proxy.get_secret_value() if partner.proxy is not None else None,
        ca_bundle=partner.ca_bundle,
        trust_env=partner.trust_env,
        environ=environ,
    )


def breaker_policy(settings: BreakerSettings, failure_threshold: int) -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=failure_threshold,
        failure_ratio=settings.failure_ratio,
        window_s=settings.window_s,
        cooldown_s=settings.cooldown_s,
        half_open_probes=settings.half_open_probes,
        probe_timeout_s=settings.probe_timeout_s,
    )


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


def build_connector(
    integration: IntegrationSettings,
    partner: PartnerSettings,
    *,
    transport: httpx.AsyncBaseTransport,
    tokens: TokenStore,
    metrics: Metrics,
    log: Any,
    guards: Guards | None = None,
) -> Connector:
    """Wire one integration's driver: its client, throttle (the account's budget and the
    partner app's), breakers and auth. ``guards`` holds what integrations of one partner
    share; pass the same one for every integration of a process."""
    info = PARTNERS[integration.partner]
    guards = guards or Guards(metrics, log)
    throttle, breakers = guards.for_integration(info.name, integration.id, limit_spec(info, partner))
    options = ClientOptions(
        partner=info.name,
        integration_id=integration.id,
        base_url=str(partner.base_url or info.base_url),
        max_attempts=partner.max_attempts,
        request_deadline_s=partner.request_deadline_s,
        max_body_bytes=partner.max_body_bytes,
        connect_timeout_s=partner.connect_timeout_s,
        read_timeout_s=partner.read_timeout_s,
    )
    client = PartnerClient(transport, options, throttle=throttle, breakers=breakers, metrics=metrics, log=log)
    creds = {k: v.get_secret_value() for k, v in integration.credentials.items()}
    page_size = partner.page_size or info.page_size
    if info.name == "guesty":
        from syncd.connectors.guesty.connector import GuestyConnector

        token_url = str(partner.token_url or info.token_url)

        async def fetch_token(form: dict[str, str]) -> dict[str, Any]:
            body: dict[str, Any] = await client.post_form_json(token_url, "/oauth2/token", form)
            return body

        client.auth = ClientCredentials(
            integration_id=integration.id,
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
            scope="open-api",
            fetch=counted(fetch_token, info.name, metrics),
            store=tokens,
            refresh_buffer_s=partner.token_refresh_buffer_s,
            max_requests_per_day=info.max_token_requests_per_day,
        )
        return GuestyConnector(client, page_size, log=log)
    raise KeyError(integration.partner)  # pragma: no cover - PARTNERS and this switch agree
