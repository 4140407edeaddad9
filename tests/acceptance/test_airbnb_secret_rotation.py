"""The field report's "Pattern 3: Rotating Credentials" for a refresh-token partner: the
partner posts a new client secret to the webhook route; the daemon (real HTTP, in this
process) tests it with a refresh, commits it with the tokens it earned, verifies it with
a real call and rolls back when that fails. A bad signature is a 401 with nothing
changed; a secret that fails leaves the old one in place, answers 422 and says so in a
metric and a log line, never the secret."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import orjson
import pytest
from structlog.testing import capture_logs

from syncd import crypto
from syncd.app import Daemon
from syncd.connectors.webhooks import hmac_sign
from syncd.simulator import limits
from syncd.simulator.fault_spec import FaultSpec, Rule, StatusParams
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.airbnb.api import AirbnbProfile
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from tests.support import daemon_config, db_rows, integration, poll_until, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

PARTNER = "airbnb"
HOOK_SECRET = "hmac-shared-secret-for-rotation"
KEY = crypto.generate_key()


@dataclass
class Stack:
    sim: Simulator
    profile: AirbnbProfile
    daemon: Daemon
    account_id: str
    credentials: CredentialStore

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.daemon.web_port}/webhooks/{PARTNER}/bnb"

    async def post(self, body: bytes, secret: str = HOOK_SECRET) -> httpx.Response:
        headers = {
            "content-type": "application/json",
            "x-airbnb-signature": hmac_sign(secret, body, int(time.time())),
        }
        async with httpx.AsyncClient() as client:
            return await client.post(self.url, content=body, headers=headers)

    async def stored_secret(self) -> tuple[str | None, int]:
        token = await self.credentials.load_token("bnb")
        assert token is not None
        return token.client_secret, token.secret_version

    def webhooks(self, result: str) -> float:
        value: float = self.daemon.metrics.webhooks.labels(PARTNER, result)._value.get()
        return value


@contextlib.asynccontextmanager
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    assert isinstance(profile, AirbnbProfile)
    account_id, secret = profile.credentials(1)
    sim.add_account(PARTNER, account_id, secret, profile.dataset(4, 30, DatasetOptions()))
    async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
        document = integration(
            "bnb", PARTNER, profile.config_credentials(account_id, secret), ("properties",),
            sweep_every_s=None, interval_s=3600.0,
        )  # fmt: skip
        config = daemon_config(
            database_url,
            {PARTNER: simulated_partner(server, PARTNER)},
            [{**document, "webhook_secrets": [HOOK_SECRET]}],
            state_dir=tmp_path,
            web=True,
        )
        config["secrets"] = {"keys": [KEY]}
        daemon: Daemon = await tg.start(Daemon(settings_of(config)).run)

        async def synced() -> bool:
            rows = await db_rows(
                database_url, "SELECT count(*) FROM schedules WHERE last_finished_at IS NULL"
            )
            return bool(rows[0][0] == 0)

        with anyio.fail_after(60):
            await poll_until(synced)
        assert daemon.store is not None
        try:
            yield Stack(sim, profile, daemon, account_id, CredentialStore(daemon.store, crypto.Cipher([KEY])))
        finally:
            daemon.request_stop()


async def test_a_rotated_secret_is_tested_committed_and_verified(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        account = s.sim.accounts[s.account_id]
        old = account.secret
        assert await s.stored_secret() == (None, 0)  # the configured secret, never rotated

        # A forged delivery (signed with another secret) changes nothing.
        new, body = s.profile.rotate_client_secret(account)
        forged = await s.post(body, secret="somebody-elses-secret-0123")
        assert forged.status_code == 401
        assert await s.stored_secret() == (None, 0)
        assert s.profile.previous_secret[s.account_id] == old  # the partner saw no use of the new one

        answer = await s.post(body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "rotated"
        assert await s.stored_secret() == (new, 1)  # committed (encrypted), after a successful test
        assert s.account_id not in s.profile.previous_secret  # the new secret was used at the partner
        assert s.profile.reused == 0 and s.webhooks("rotated") == 1

        # Later refreshes use the new secret: the old one is gone at the partner.
        stored = await s.credentials.load_token("bnb")
        assert stored is not None and stored.refresh_token is not None
        rows = await db_rows(
            database_url, "SELECT client_secret FROM credentials WHERE integration_id = 'bnb'"
        )
        assert new.encode() not in rows[0][0].encode()  # stored encrypted


async def test_a_secret_that_fails_is_rolled_back_and_answered_with_an_error(
    database_url: str, tmp_path: Path
) -> None:
    with capture_logs() as logs:
        await _fail_and_roll_back(database_url, tmp_path)
    # The failures were logged, and no log line carried a secret.
    assert any(e["event"] == "client_secret_rotation_refused" for e in logs)
    logged = repr(logs)
    assert "sim-airbnb-rotated" not in logged and "not-a-secret-the-partner-has" not in logged


async def _fail_and_roll_back(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s:
        # A secret the partner does not know: the test refresh is refused, nothing changes.
        bogus = orjson.dumps(
            {"event": "client_secret.rotated", "client_secret": "not-a-secret-the-partner-has"}
        )
        token_before = await s.credentials.load_token("bnb")
        answer = await s.post(bogus)
        assert answer.status_code == 422 and answer.json()["status"] == "rotation_refused"
        assert "not-a-secret-the-partner-has" not in answer.text
        assert await s.stored_secret() == (None, 0)
        token_after = await s.credentials.load_token("bnb")
        assert token_after is not None and token_before is not None
        assert token_after.refresh_token == token_before.refresh_token  # the grant was not spent
        assert s.webhooks("rotation_refused") == 1

        # A secret the partner accepts, but the verifying call fails: rolled back.
        account = s.sim.accounts[s.account_id]
        new, body = s.profile.rotate_client_secret(account)
        s.sim.set_faults(FaultSpec((Rule("status", 1.0, ("/v2/listings",), params=StatusParams((403,))),)))
        answer = await s.post(body)
        assert answer.status_code == 422
        secret, version = await s.stored_secret()
        assert secret is None and version == 2  # committed (1), then restored (2) to the configured one
        assert s.webhooks("rotation_refused") == 2
        assert s.profile.reused == 0

        # The partner retries its delivery once the API works again: adopted.
        s.sim.set_faults(None)
        answer = await s.post(body)
        assert answer.status_code == 200
        assert (await s.stored_secret())[0] == new
        # With the grant refused (re-authorization needed) the new secret cannot be tried:
        # the refused refresh token is never sent again to try it.
        await db_rows(
            database_url, "UPDATE credentials SET grant_refused_at = now() WHERE integration_id = 'bnb'"
        )
        token_requests = len(s.sim.request_log.entries(path="/airbnb/v2/oauth2/authorizations"))
        _, body = s.profile.rotate_client_secret(account)
        answer = await s.post(body)
        assert answer.status_code == 422
        assert len(s.sim.request_log.entries(path="/airbnb/v2/oauth2/authorizations")) == token_requests
        assert (await s.stored_secret())[0] == new and s.profile.reused == 0
