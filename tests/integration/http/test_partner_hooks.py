"""The neutral contract's auth and error hooks, each against a loopback partner with the real
PartnerClient and the real credentials table: statuses that mean "token invalid", token
warm-up (also for a token another process minted), errors under HTTP 200, and the auth
scheme chosen by the configured credential set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd import errors
from syncd.config import IntegrationSettings, PartnerSettings
from syncd.connectors import registry
from syncd.connectors.base import Connector, PartnerInfo
from syncd.crypto import Cipher, generate_key
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from tests.integration.http.acme_partner import PARTNER, Seen, acme_server
from tests.integration.http.scripted import partner_transport

pytestmark = pytest.mark.anyio

CLIENT = {"client_id": "cid", "client_secret": "csecret"}


async def ok_unless_first_token(request: Seen, issued: list[str]) -> tuple[int, Any]:
    """The first token is refused (403, as an expired token is); any later one works."""
    if request.headers.get("authorization") == "Bearer t1":
        return 403, {"status": "fail", "message": "token expired"}
    return 200, {"status": "success", "result": []}


@asynccontextmanager
async def wired(
    database_url: str, url: str, credentials: dict[str, str], info: PartnerInfo = PARTNER
) -> AsyncIterator[tuple[Connector, CredentialStore, Metrics]]:
    async with Store.open(database_url) as store:
        await store.register_integration("acme-1", info.name, True, {})
        tokens = CredentialStore(store, Cipher([generate_key()]))
        integration = IntegrationSettings.model_validate(
            {"id": "acme-1", "partner": info.name, "credentials": credentials}
        )
        partner = PartnerSettings.model_validate(
            {"base_url": url, "token_url": f"{url}/token", "max_attempts": 2}
        )
        metrics = Metrics()
        transport = partner_transport()
        try:
            wiring = registry.wire(
                info,
                integration,
                partner,
                transport=transport,
                tokens=tokens,
                metrics=metrics,
                log=get_logger(),
            )
            assert info.connect is not None
            yield info.connect(wiring), tokens, metrics
        finally:
            await transport.aclose()


async def test_a_403_means_a_new_token_and_one_resend_for_a_partner_that_says_so(database_url: str) -> None:
    async with (
        acme_server(ok_unless_first_token) as (url, server),
        wired(database_url, url, CLIENT) as (
            connector,
            tokens,
            metrics,
        ),
    ):
        await connector.check_access()
        assert [t for t, _ in server.issued] == ["t1", "t2"]
        assert [c.headers["authorization"] for c in server.api_calls()] == ["Bearer t1", "Bearer t2"]
        stored = await tokens.load_token("acme-1")
        assert stored is not None and stored.access_token == "t2"
        assert (
            metrics.registry.get_sample_value(
                "syncd_token_requests_total", {"partner": "acme", "outcome": "ok"}
            )
            == 2
        )


async def test_a_403_is_a_refusal_for_a_partner_with_the_default_auth_statuses(database_url: str) -> None:
    plain = replace(PARTNER, auth_statuses=frozenset({401}))
    async with (
        acme_server(ok_unless_first_token) as (url, server),
        wired(database_url, url, CLIENT, plain) as (connector, _, _),
    ):
        with pytest.raises(errors.PartnerRejected) as refused:
            await connector.check_access()
        assert refused.value.status == 403
        assert [t for t, _ in server.issued] == ["t1"]  # no new token, no resend
        assert len(server.api_calls()) == 1


WARMUP_S = 0.4


async def test_a_new_token_is_not_used_before_its_warm_up_has_passed(database_url: str) -> None:
    slow = replace(PARTNER, token_warmup_s=WARMUP_S)

    async def ok(request: Seen, issued: list[str]) -> tuple[int, Any]:
        return 200, {"success": True}

    async with acme_server(ok) as (url, server), wired(database_url, url, CLIENT, slow) as (connector, _, _):
        await connector.check_access()
        ((_, issued_at),), (call,) = server.issued, server.api_calls()
        assert call.headers["authorization"] == "Bearer t1"
        assert call.at - issued_at >= timedelta(seconds=WARMUP_S)


async def test_a_token_another_process_just_minted_is_not_used_before_its_warm_up(database_url: str) -> None:
    slow = replace(PARTNER, token_warmup_s=WARMUP_S)

    async def ok(request: Seen, issued: list[str]) -> tuple[int, Any]:
        return 200, {"success": True}

    async with (
        acme_server(ok) as (url, server),
        wired(database_url, url, CLIENT, slow) as (
            connector,
            tokens,
            _,
        ),
    ):
        # Another process's grant: the row lock taken, the token saved with its issue time.
        async with tokens.token_lock("acme-1") as txn:
            minted_at = datetime.now(UTC)
            await txn.save("minted-elsewhere", "Bearer", minted_at + timedelta(hours=1), None, minted_at)
        await connector.check_access()
        assert server.issued == []  # the stored token was adopted, not replaced
        (call,) = server.api_calls()
        assert call.headers["authorization"] == "Bearer minted-elsewhere"
        assert call.at - minted_at >= timedelta(seconds=WARMUP_S)


async def test_an_auth_error_under_http_200_gets_a_new_token_and_one_resend(database_url: str) -> None:
    async def stale_first(request: Seen, issued: list[str]) -> tuple[int, Any]:
        if request.headers.get("authorization") == "Bearer t1":
            return 200, {"success": False, "message": "Access token is not valid anymore"}
        return 200, {"success": True, "data": []}

    async with (
        acme_server(stale_first) as (url, server),
        wired(database_url, url, CLIENT) as (connector, _, _),
    ):
        with capture_logs() as logs:
            await connector.check_access()
        assert [t for t, _ in server.issued] == ["t1", "t2"]
        calls = [e for e in logs if e["event"] == "api_call" and e["endpoint"] == "/items"]
        assert [(e["status"], e["error_class"]) for e in calls] == [("200", "auth"), ("200", None)]


async def test_a_business_error_under_http_200_is_a_refusal_not_retried(database_url: str) -> None:
    async def needs_property(request: Seen, issued: list[str]) -> tuple[int, Any]:
        return 200, {"success": False, "message": "Please specify propertyID"}

    async with (
        acme_server(needs_property) as (url, server),
        wired(database_url, url, CLIENT) as (
            connector,
            _,
            metrics,
        ),
    ):
        with pytest.raises(errors.PartnerRejected, match="propertyID"):
            await connector.check_access()
        assert len(server.api_calls()) == 1
        assert [t for t, _ in server.issued] == ["t1"]
        retries = metrics.registry.get_sample_value(
            "syncd_api_retries_total", {"partner": "acme", "error_class": "client"}
        )
        assert not retries


async def test_an_api_key_credential_is_sent_as_a_header_without_any_token_request(database_url: str) -> None:
    async def keyed(request: Seen, issued: list[str]) -> tuple[int, Any]:
        return (200, {"success": True}) if request.headers.get("x-api-key") == "cbat_k" else (401, {})

    async with (
        acme_server(keyed) as (url, server),
        wired(database_url, url, {"api_key": "cbat_k"}) as (
            connector,
            _,
            _,
        ),
    ):
        await connector.check_access()
        assert server.issued == []
        assert [c.headers.get("authorization") for c in server.api_calls()] == [None]


async def test_refresh_token_credentials_get_a_refresh_grant_whose_rotation_is_stored(
    database_url: str,
) -> None:
    async def bearer(request: Seen, issued: list[str]) -> tuple[int, Any]:
        return 200, {"success": True}

    creds = {**CLIENT, "refresh_token": "r0"}
    async with (
        acme_server(bearer) as (url, server),
        wired(database_url, url, creds) as (connector, tokens, _),
    ):
        await connector.check_access()
        (grant,) = [s for s in server.seen if s.path.endswith("/token")]
        assert grant.form["grant_type"] == "refresh_token" and grant.form["refresh_token"] == "r0"
        assert [c.headers["authorization"] for c in server.api_calls()] == ["Bearer t1"]
        stored = await tokens.load_token("acme-1")
        assert stored is not None and stored.refresh_token == "r1"  # the rotated one, persisted
