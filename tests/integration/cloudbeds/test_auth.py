"""Cloudbeds' auth quirks end to end: real daemons and the production client against the
simulator profile over loopback HTTP, into PostgreSQL.

OAuth refresh tokens slide (a used one is refused afterwards), so daemons sharing one
integration must never present the same refresh token twice, however often the access
token expires; an expired access token is a 401, answered by one new token and one retry;
and a business error under HTTP 200 is the partner's error, not an empty page.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd import crypto, errors
from syncd.app import Daemon
from syncd.connectors import registry
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from tests.support import daemon_config, db_rows, integration, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

PARTNER = "cloudbeds"
RESOURCES = ("properties", "reservations")


class WallClock:
    """The simulator's clock for token expiry, stepped by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _simulator(clock: WallClock, ttl_s: int) -> tuple[Simulator, Any]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), wall_clock=clock, token_ttl_s=ttl_s)
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    sim.add_account(PARTNER, account_id, secret, profile.dataset(3, 150, DatasetOptions()))
    return sim, profile


def _document(
    server: SimulatorServer, database_url: str, credentials: dict[str, str], tmp_path: Path
) -> dict[str, Any]:
    settings = simulated_partner(server, PARTNER)
    return daemon_config(
        database_url,
        {PARTNER: settings},
        [integration("oauth", PARTNER, credentials, RESOURCES)],
        state_dir=tmp_path,
    )


async def _live_rows(database_url: str, table: str) -> int:
    rows = await db_rows(
        database_url, f"SELECT count(*) FROM {table} WHERE integration_id = 'oauth' AND deleted_at IS NULL"
    )
    return int(rows[0][0])


async def test_daemons_sharing_an_oauth_integration_never_reuse_a_refresh_token(
    database_url: str, tmp_path: Path
) -> None:
    clock = WallClock()
    sim, profile = _simulator(clock, ttl_s=3600)
    credentials = profile.oauth_credentials(sim.accounts[profile.credentials(1)[0]])
    async with SimulatorServer(sim) as server:
        document = _document(server, database_url, credentials, tmp_path)
        for _ in range(3):  # each round starts after every access token has expired
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(Daemon(settings_of(document), once=True).run)
            clock.offset += 3601
    assert profile.reused == 0
    assert len(profile.used) >= 3  # a refresh per round at least: the expiry was crossed
    data = sim.account(profile.credentials(1)[0])
    for table in RESOURCES:
        truth = sum(len(chunk.splitlines()) for chunk in profile.truth(data, table))
        assert truth and await _live_rows(database_url, table) == truth


async def test_an_expired_access_token_is_one_401_one_new_token_and_one_retry(
    database_url: str, tmp_path: Path
) -> None:
    clock = WallClock()
    sim, profile = _simulator(clock, ttl_s=3600)
    account = sim.accounts[profile.credentials(1)[0]]
    async with SimulatorServer(sim) as server, Store.open(database_url) as store, Transports() as transports:
        settings = settings_of(_document(server, database_url, profile.oauth_credentials(account), tmp_path))
        await store.register_integration("oauth", PARTNER, True, dict.fromkeys(RESOURCES, (3600.0, True)))
        connector = registry.build_connector(
            settings.integrations[0],
            settings.partner(PARTNER),
            transport=transports.get(PARTNER, registry.egress(settings.partner(PARTNER), {})),
            tokens=CredentialStore(store, crypto.Cipher([crypto.generate_key()])),
            metrics=Metrics(),
            log=get_logger(),
        )
        await connector.check_access()
        assert len(profile.used) == 1
        clock.offset += 3601  # the partner's clock: our token still looks valid to us
        await connector.check_access()
        path = "/cloudbeds/api/v1.3/getHotels"
        assert [e.status for e in sim.request_log.entries(path=path)] == [200, 401, 200]
        assert len(profile.used) == 2 and profile.reused == 0

        # A business error under HTTP 200 is the partner's error, classified by its message.
        client = connector._client  # type: ignore[attr-defined]
        with pytest.raises(errors.PartnerRejected, match="propertyID"):
            await client.get("/getReservations", params={"pageSize": 1}, decode=bytes)
        profile.revoke(account)
        for token in list(profile.refresh):
            del profile.refresh[token]  # the grant withdrawn: the next refresh is refused
        with pytest.raises(errors.PartnerError):
            await connector.check_access()


async def test_a_refresh_whose_answer_is_lost_is_not_resent(database_url: str, tmp_path: Path) -> None:
    """The partner rotated the refresh token but its answer was cut mid-body: the client
    does not resend (that would present the used token, which revokes the family); the
    grant is marked for re-authorization instead, and the partner counts no reuse."""
    from syncd.simulator.fault_spec import FaultSpec, Rule

    clock = WallClock()
    sim, profile = _simulator(clock, ttl_s=3600)
    account = sim.accounts[profile.credentials(1)[0]]
    async with SimulatorServer(sim) as server, Store.open(database_url) as store, Transports() as transports:
        settings = settings_of(_document(server, database_url, profile.oauth_credentials(account), tmp_path))
        await store.register_integration("oauth", PARTNER, True, dict.fromkeys(RESOURCES, (3600.0, True)))
        connector = registry.build_connector(
            settings.integrations[0],
            settings.partner(PARTNER),
            transport=transports.get(PARTNER, registry.egress(settings.partner(PARTNER), {})),
            tokens=CredentialStore(store, crypto.Cipher([crypto.generate_key()])),
            metrics=Metrics(),
            log=get_logger(),
        )
        sim.set_faults(FaultSpec((Rule("truncated", 1.0, ("@token",)),)))
        with pytest.raises(errors.AuthFailed, match="re-authorization needed"):
            await connector.check_access()
        token_path = "/cloudbeds/api/v1.3/access_token"
        assert len(sim.request_log.entries(path=token_path)) == 1  # sent once, not retried
        assert len(profile.used) == 1 and profile.reused == 0
