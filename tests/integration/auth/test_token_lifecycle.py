"""Token lifecycle on a real database and the real simulator: single flight (coroutines and
processes), encryption at rest, key rotation, the partner's token cap, secret rotation."""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
import asyncpg
import httpx
import orjson
import pytest

from syncd import errors
from syncd.crypto import Cipher, generate_key
from syncd.http.auth import ClientCredentials
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store

TOKEN = "/oauth2/token"  # below the simulator's /guesty prefix

pytestmark = pytest.mark.anyio


def simulator() -> Simulator:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", "guesty-acct-1", "sim-secret-1", GuestyAccount(seed=1, listings=10))
    return sim


def fetcher(http: httpx.AsyncClient, token_url: str) -> Any:
    async def fetch(form: dict[str, str]) -> dict[str, Any]:
        response = await http.post(token_url, data=form)
        if response.status_code == 401:
            raise errors.AuthFailed("invalid_client", status=401)
        response.raise_for_status()
        body: dict[str, Any] = orjson.loads(response.content)
        return body

    return fetch


async def expire_stored_token(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE credentials SET token_expires_at = now() - interval '1 minute'")
    finally:
        await conn.close()


async def setup(store: Store) -> None:
    await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})


async def test_32_coroutines_meeting_an_expired_token_cause_one_request(database_url: str) -> None:
    sim = simulator()
    async with (
        SimulatorServer(sim) as server,
        Store.open(database_url) as store,
        httpx.AsyncClient() as http,
    ):
        await setup(store)
        credentials = CredentialStore(store, Cipher([generate_key()]))

        def auth() -> ClientCredentials:
            return ClientCredentials(
                integration_id="acme", client_id="guesty-acct-1", client_secret="sim-secret-1",
                scope="open-api", fetch=fetcher(http, server.url("guesty", TOKEN)), store=credentials,
            )  # fmt: skip

        first = await auth().headers()
        await expire_stored_token(database_url)
        shared = auth()  # a fresh process-level object: its cache is empty, the row is expired
        seen: list[str] = []

        async def one() -> None:
            seen.append((await shared.headers())["Authorization"])

        async with anyio.create_task_group() as tg:
            for _ in range(32):
                tg.start_soon(one)
        assert sim.request_log.count(path="/guesty/oauth2/token") == 2  # the first token, then exactly one
        assert len(set(seen)) == 1 and seen[0] != first["Authorization"]


async def test_two_processes_sharing_a_database_cause_one_request(database_url: str) -> None:
    sim = simulator()
    key = generate_key()
    async with SimulatorServer(sim) as server:
        start_at = time.time() + 2.0
        command = [
            sys.executable, "-m", "tests.integration.auth.token_race",
            database_url, server.url("guesty", "/oauth2/token"), key, str(start_at), "16",
        ]  # fmt: skip
        async with Store.open(database_url) as store:
            await setup(store)
        procs = [await anyio.open_process(command) for _ in range(2)]
        outputs = []
        with anyio.fail_after(60):
            for proc in procs:
                assert proc.stdout is not None
                chunks = [chunk async for chunk in proc.stdout]
                assert await proc.wait() == 0
                outputs.append(orjson.loads(b"".join(chunks)))
        assert sim.request_log.count(path="/guesty/oauth2/token") == 1
        assert outputs[0] == outputs[1] and len(outputs[0]) == 1


async def test_tokens_are_encrypted_at_rest_and_keys_rotate(database_url: str) -> None:
    sim = simulator()
    old_key, new_key = generate_key(), generate_key()
    async with (
        SimulatorServer(sim) as server,
        Store.open(database_url) as store,
        httpx.AsyncClient() as http,
    ):
        await setup(store)
        old = CredentialStore(store, Cipher([old_key]))
        auth = ClientCredentials(
            integration_id="acme", client_id="guesty-acct-1", client_secret="sim-secret-1",
            scope="open-api", fetch=fetcher(http, server.url("guesty", "/oauth2/token")), store=old,
        )  # fmt: skip
        token = (await auth.headers())["Authorization"].removeprefix("Bearer ")
        conn = await asyncpg.connect(database_url)
        try:
            stored = await conn.fetchval("SELECT access_token FROM credentials")
            assert token not in stored and "sim-secret" not in stored
            # Key rotation: the new key first, the old one still accepted, then re-encrypt.
            rotating = CredentialStore(store, Cipher([new_key, old_key]))
            assert await rotating.reencrypt_all() == 1
            assert await conn.fetchval("SELECT access_token FROM credentials") != stored
        finally:
            await conn.close()
        only_new = CredentialStore(store, Cipher([new_key]))
        loaded = await only_new.load_token("acme")
        assert loaded is not None and loaded.access_token == token
        with pytest.raises(errors.StoreError, match="cannot be decrypted"):
            await CredentialStore(store, Cipher([old_key])).load_token("acme")


async def test_the_token_cap_is_enforced_locally_before_the_partner_refuses(database_url: str) -> None:
    sim = simulator()
    async with (
        SimulatorServer(sim) as server,
        Store.open(database_url) as store,
        httpx.AsyncClient() as http,
    ):
        await setup(store)
        credentials = CredentialStore(store, Cipher([generate_key()]))
        for _ in range(3):
            auth = ClientCredentials(
                integration_id="acme", client_id="guesty-acct-1", client_secret="sim-secret-1",
                scope="open-api", fetch=fetcher(http, server.url("guesty", TOKEN)), store=credentials,
                max_requests_per_day=2,
            )  # fmt: skip
            try:
                await auth.headers()
            except errors.RateLimited as exc:
                assert exc.retry_after is not None and 86_000 < exc.retry_after <= 86_400
                break
            finally:
                await expire_stored_token(database_url)
        else:
            raise AssertionError("the third token request was not refused")
        assert sim.request_log.count(path="/guesty/oauth2/token") == 2


async def test_secret_rotation_commits_verifies_and_rolls_back(database_url: str) -> None:
    sim = simulator()
    async with (
        SimulatorServer(sim) as server,
        Store.open(database_url) as store,
        httpx.AsyncClient() as http,
    ):
        await setup(store)
        credentials = CredentialStore(store, Cipher([generate_key()]))
        auth = ClientCredentials(
            integration_id="acme", client_id="guesty-acct-1", client_secret="stale-config-secret",
            scope="open-api", fetch=fetcher(http, server.url("guesty", "/oauth2/token")), store=credentials,
        )  # fmt: skip

        async def verify_ok() -> None:
            return None

        # A wrong new secret is refused by the partner: nothing is committed.
        with pytest.raises(errors.AuthFailed):
            await auth.rotate_secret("wrong-secret", verify_ok)
        stored = await credentials.load_token("acme")
        assert stored is not None and stored.client_secret is None

        # The right one is tried, committed with its token, verified.
        await auth.rotate_secret("sim-secret-1", verify_ok)
        stored = await credentials.load_token("acme")
        assert stored is not None and stored.client_secret == "sim-secret-1" and stored.secret_version == 1

        # A later rotation whose verification fails is rolled back to the previous secret.
        async def verify_fails() -> None:
            raise errors.PartnerRejected("403 on the first real call", status=403)

        sim.accounts["guesty-acct-1"].secret = "sim-secret-2"  # the partner accepts the new secret
        with pytest.raises(errors.PartnerRejected):
            await auth.rotate_secret("sim-secret-2", verify_fails)
        stored = await credentials.load_token("acme")
        assert stored is not None and stored.client_secret == "sim-secret-1" and stored.access_token is None
