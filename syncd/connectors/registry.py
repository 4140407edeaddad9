"""The partner catalogue: every partner package found, and each integration's driver wired.

Partners are discovered, never listed here. A partner is a package that exports
``PARTNER``, a ``syncd.connectors.base.PartnerInfo`` holding its documented facts and a
``connect(wiring)`` factory:

* every subpackage of ``syncd.connectors`` (``syncd/connectors/<partner>/__init__.py``);
* every entry point of the group ``syncd.partners``, for connectors shipped outside this
  tree. The entry point names a ``PartnerInfo``; in the distribution's pyproject.toml::

      [project.entry-points."syncd.partners"]
      acme = "syncd_acme:PARTNER"

Two partners with one name are a packaging error, reported at start.
The registry prepares what is common to every partner (client, limits, breakers, error
rules, decrypted credentials, the API version the integration runs:
``syncd.connectors.wiring.Wiring``); the package's ``connect`` chooses the auth scheme and
builds its driver for that version.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import Any

import httpx

import syncd.connectors
from syncd.config import BreakerSettings, IntegrationSettings, PartnerSchema, PartnerSettings
from syncd.connectors.base import Connector, PartnerInfo
from syncd.connectors.versions import Rollout, chosen_version
from syncd.connectors.wiring import Wiring, counted
from syncd.http.auth import TokenStore
from syncd.http.breaker import BreakerPolicy
from syncd.http.budget import AimdPolicy
from syncd.http.classify import PartnerRules
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.egress import Egress
from syncd.http.guards import Guards, LimitSpec
from syncd.http.tiers import parse_tier
from syncd.observability.metrics import Metrics

__all__ = [
    "api_version",
    "build_connector",
    "counted",
    "discover",
    "egress",
    "limit_spec",
    "partners",
    "schemas",
    "wire",
]

ENTRY_POINT_GROUP = "syncd.partners"
EXPORT = "PARTNER"


def _bundled() -> Iterator[PartnerInfo]:
    for module in pkgutil.iter_modules(syncd.connectors.__path__, "syncd.connectors."):
        if module.ispkg:
            info = getattr(importlib.import_module(module.name), EXPORT, None)
            if isinstance(info, PartnerInfo):
                yield info


def _installed() -> Iterator[PartnerInfo]:
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        info = entry.load()
        if not isinstance(info, PartnerInfo):
            raise TypeError(f"entry point {entry.name} = {entry.value!r} is not a PartnerInfo")
        yield info


def discover(found: Iterator[PartnerInfo]) -> dict[str, PartnerInfo]:
    """Partners by name; a name found twice is refused rather than silently shadowed."""
    catalogue: dict[str, PartnerInfo] = {}
    for info in found:
        if info.name in catalogue and catalogue[info.name] is not info:
            raise RuntimeError(f"two partner packages are named {info.name!r}")
        catalogue[info.name] = info
    return catalogue


@functools.cache
def partners() -> Mapping[str, PartnerInfo]:
    """Every partner of this installation, by name (discovered once per process)."""
    return discover(iter([*_bundled(), *_installed()]))


def schemas() -> dict[str, PartnerSchema]:
    return {name: info.schema for name, info in partners().items()}


def limit_spec(info: PartnerInfo, partner: PartnerSettings) -> LimitSpec:
    """The documented limits, overridden by configuration where it sets them."""
    tiers = partner.rate_limits if partner.rate_limits is not None else info.rate_limits
    app_tiers = partner.app_rate_limits if partner.app_rate_limits is not None else info.app_rate_limits
    return LimitSpec(
        tiers=[parse_tier(t) for t in tiers],
        app_tiers=[parse_tier(t) for t in app_tiers],
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


def api_version(info: PartnerInfo, integration: IntegrationSettings, partner: PartnerSettings) -> str:
    """The API version ``integration`` runs: its pin, else the partner's rollout decides
    (the same answer in every process: ``syncd.connectors.versions``)."""
    rollout = partner.rollout
    return chosen_version(
        integration.id,
        integration.api_version,
        info.default_version,
        None if rollout is None else Rollout(rollout.version, rollout.percent),
    )


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
    """One integration's driver, built by its partner package from what ``wire`` prepared.
    ``guards`` holds what integrations of one partner share; pass the same one for every
    integration of a process."""
    info = partners()[integration.partner]
    if info.connect is None:
        raise KeyError(f"partner {info.name!r} has no driver")
    return info.connect(
        wire(
            info,
            integration,
            partner,
            transport=transport,
            tokens=tokens,
            metrics=metrics,
            log=log,
            guards=guards,
        )
    )


def wire(
    info: PartnerInfo,
    integration: IntegrationSettings,
    partner: PartnerSettings,
    *,
    transport: httpx.AsyncBaseTransport,
    tokens: TokenStore,
    metrics: Metrics,
    log: Any,
    guards: Guards | None = None,
) -> Wiring:
    """What every partner shares: the integration's client with its throttle (the
    account's budget and the partner app's), breakers and error rules, and its decrypted
    credentials. No auth yet: that is the package's choice."""
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
    version = api_version(info, integration, partner)
    metrics.integration_api_version.labels(integration.id, info.name, version).set(1)
    log.info(
        "integration_api_version",
        integration=integration.id,
        partner=info.name,
        version=version,
        pinned=integration.api_version is not None,
    )
    rules = PartnerRules(auth_statuses=info.auth_statuses, body_error=info.classify_body)
    client = PartnerClient(
        transport, options, throttle=throttle, breakers=breakers, metrics=metrics, log=log, rules=rules
    )
    return Wiring(
        info=info,
        integration_id=integration.id,
        client=client,
        credentials={k: v.get_secret_value() for k, v in integration.credentials.items()},
        tokens=tokens,
        settings=partner,
        page_size=partner.page_size or info.page_size,
        metrics=metrics,
        log=log,
        api_version=version,
        resources=frozenset(integration.resources),
    )
