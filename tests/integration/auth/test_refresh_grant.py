"""Refresh-token grants with single-use rotating refresh tokens (Cloudbeds, Airbnb):
one refresh for any number of coroutines, the rotated token committed before use,
and a reused one means re-authorization, not a retry loop."""

from __future__ import annotations

from typing import Any

import anyio
import asyncpg
import httpx
import orjson
import pytest

from syncd import errors
from syncd.crypto import Cipher, generate_key
from syncd.http.auth import RefreshTokenGrant
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store

pytestmark = pytest.mark.anyio


class RotatingPartner:
    """Every refresh token works once; reusing one revokes the whole family (OAuth 2.1)."""

    def __init__(self) -> None:
        self.current = "rt-1"
        self.used: set[str] = set()
        self.revoked = False
        self.refreshes = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        token = form.get("refresh_token", "")
        if self.revoked or token in self.used or token != self.current:
            self.revoked = True
            return httpx.Response(400, json={"error": "invalid_grant"})
        self.used.add(token)
        self.refreshes += 1
        self.current = f"rt-{self.refreshes + 1}"
        return httpx.Response(
            200,
            json={"access_token": f"at-{self.refreshes}", "expires_in": 28800, "refresh_token": self.current},
        )


def grant(partner: RotatingPartner, credentials: CredentialStore) -> RefreshTokenGrant:
    http = httpx.AsyncClient(transport=httpx.MockTransport(partner))

    async def fetch(form: dict[str, str]) -> dict[str, Any]:
        response = await http.post("https://partner.test/access_token", data=form)
        if response.status_code != 200:
            raise errors.PartnerRejected(response.text, status=response.status_code)
        body: dict[str, Any] = orjson.loads(response.content)
        return body

    return RefreshTokenGrant(
        integration_id="acme", client_id="cid", client_secret="csecret",
        initial_refresh_token="rt-1", fetch=fetch, store=credentials,
    )  # fmt: skip


async def test_rotating_refresh_tokens_single_flight_persisted_and_reuse_detected(database_url: str) -> None:
    partner = RotatingPartner()
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "cloudbeds", True, {})
        credentials = CredentialStore(store, Cipher([generate_key()]))
        first = grant(partner, credentials)
        got: list[str] = []

        async def one() -> None:
            got.append((await first.headers())["Authorization"])

        async with anyio.create_task_group() as tg:
            for _ in range(32):
                tg.start_soon(one)
        assert partner.refreshes == 1 and set(got) == {"Bearer at-1"}

        conn = await asyncpg.connect(database_url)
        try:
            stored = await conn.fetchval(
                "SELECT refresh_token FROM credentials WHERE integration_id = 'acme'"
            )
            assert stored and "rt-2" not in stored  # persisted, encrypted
            # A restart whose access token expired refreshes with the stored (rotated) token.
            await conn.execute("UPDATE credentials SET token_expires_at = now() - interval '1 s'")
            restarted = grant(partner, credentials)
            assert (await restarted.headers())["Authorization"] == "Bearer at-2"
            assert partner.refreshes == 2 and partner.current == "rt-3"

            # A crash between the partner's answer (rt-3 -> rt-4) and our commit loses rt-4:
            # the next refresh reuses rt-3, the partner revokes the family, and we ask for
            # re-authorization instead of looping.
            partner.used.add("rt-3")
            partner.current = "rt-4"
            await conn.execute("UPDATE credentials SET token_expires_at = now() - interval '1 s'")
            with pytest.raises(errors.AuthFailed, match="re-authorization"):
                await grant(partner, credentials).headers()
            assert partner.revoked
        finally:
            await conn.close()
