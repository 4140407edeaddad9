"""Booking.com's machine-account JWT end to end: the production connector and real daemons
against the simulator over loopback HTTP, tokens stored in PostgreSQL.

A token lasts an hour and at most 30 are issued per hour: processes share the stored one
(restarts included), the cap is enforced before asking; a 401 is one new token and one
resend; a 403 ("no access to this property") is an error of its own, never a refresh.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd import crypto, errors
from syncd.app import Daemon
from syncd.connectors import registry
from syncd.connectors.base import Connector
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.booking_com.api import BookingProfile
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from tests.support import daemon_config, db_rows, integration, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

PARTNER = "booking_com"
QUEUE = "/booking_com/hotels/ota/OTA_HotelResNotif"
TOKEN = "/booking_com/token-based-authentication/exchange"


class WallClock:
    """The simulator's clock for token expiry and the hourly cap, stepped by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _simulator(clock: WallClock, size: int = 120) -> tuple[Simulator, BookingProfile, str, str]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), wall_clock=clock)
    profile = sim.profile(PARTNER)
    assert isinstance(profile, BookingProfile)
    account_id, secret = profile.credentials(1)
    sim.add_account(PARTNER, account_id, secret, profile.dataset(3, size, DatasetOptions()))
    return sim, profile, account_id, secret


def _document(
    server: SimulatorServer, database_url: str, profile: BookingProfile, tmp_path: Path
) -> dict[str, Any]:
    settings = simulated_partner(server, PARTNER, queue_empty_poll_s=0, queue_ack_pause_s=0)
    credentials = profile.config_credentials(*profile.credentials(1))
    return daemon_config(
        database_url,
        {PARTNER: settings},
        [integration("bk", PARTNER, credentials, ["reservations"])],
        state_dir=tmp_path,
    )


@asynccontextmanager
async def _connector(document: dict[str, Any], database_url: str) -> AsyncIterator[Connector]:
    settings = settings_of(document)
    async with Store.open(database_url) as store, Transports() as transports:
        await store.register_integration("bk", PARTNER, True, {"reservations": (3600.0, True)})
        yield registry.build_connector(
            settings.integrations[0],
            settings.partner(PARTNER),
            transport=transports.get(PARTNER, registry.egress(settings.partner(PARTNER), {})),
            tokens=CredentialStore(store, crypto.Cipher([crypto.generate_key()])),
            metrics=Metrics(),
            log=get_logger(),
        )


async def test_processes_and_restarts_share_one_stored_token(database_url: str, tmp_path: Path) -> None:
    clock = WallClock()
    sim, profile, account_id, _ = _simulator(clock)
    async with SimulatorServer(sim) as server:
        document = _document(server, database_url, profile, tmp_path)
        for _ in range(2):  # a restart: a new set of processes
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(Daemon(settings_of(document), once=True).run)
        assert profile.tokens_issued(account_id) == 1
        clock.offset += 3600  # the token has expired: exactly one new one for everyone
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(Daemon(settings_of(document), once=True).run)
    assert profile.issued_total[account_id] == 2
    rows = await db_rows(database_url, "SELECT count(*) FROM reservations WHERE integration_id = 'bk'")
    assert rows[0][0] == 120


async def test_the_hourly_token_cap_is_enforced_before_the_partner_refuses(
    database_url: str, tmp_path: Path
) -> None:
    clock = WallClock()
    sim, profile, account_id, _ = _simulator(clock)
    async with SimulatorServer(sim) as server:
        document = _document(server, database_url, profile, tmp_path)
        async with _connector(document, database_url) as connector:
            for _ in range(30):
                await connector.check_access()
                profile.revoke(sim.accounts[account_id])  # each next call: a 401, a new token
            with pytest.raises(
                errors.RateLimited, match=r"token request cap reached \(30 in 1 h\)"
            ) as caught:
                await connector.check_access()
    assert caught.value.retry_after is not None and 3000 < caught.value.retry_after <= 3600
    assert profile.tokens_issued(account_id) == 30
    assert profile.tokens_refused == 0, "syncd asked beyond the cap: the partner had to refuse"


async def test_the_simulated_partner_refuses_a_31st_token_in_the_hour(
    database_url: str, tmp_path: Path
) -> None:
    clock = WallClock()
    sim, profile, account_id, secret = _simulator(clock)
    async with SimulatorServer(sim) as server:
        import httpx

        async with httpx.AsyncClient() as http:
            statuses = [
                (await http.post(server.url(PARTNER, TOKEN.removeprefix("/booking_com")),
                                 json={"client_id": account_id, "client_secret": secret})).status_code
                for _ in range(31)
            ]  # fmt: skip
    assert statuses == [200] * 30 + [429] and profile.tokens_refused == 1


async def test_a_401_is_one_new_token_and_one_resend(database_url: str, tmp_path: Path) -> None:
    clock = WallClock()
    sim, profile, account_id, _ = _simulator(clock)
    async with SimulatorServer(sim) as server:
        document = _document(server, database_url, profile, tmp_path)
        async with _connector(document, database_url) as connector:
            await connector.check_access()
            clock.offset += 3601  # the partner's clock: our token still looks valid to us
            await connector.check_access()
    assert [e.status for e in sim.request_log.entries(path=QUEUE)] == [200, 401, 200]
    assert profile.issued_total[account_id] == 2


async def test_a_403_is_no_access_to_the_property_not_a_token_refresh(
    database_url: str, tmp_path: Path
) -> None:
    clock = WallClock()
    sim, profile, account_id, _ = _simulator(clock)
    async with SimulatorServer(sim) as server:
        document = _document(server, database_url, profile, tmp_path)
        async with _connector(document, database_url) as connector:
            await connector.check_access()
            profile.no_access.add(account_id)
            with pytest.raises(errors.PartnerRejected, match="no access to the property") as caught:
                await connector.check_access()
    assert caught.value.status == 403
    assert [e.status for e in sim.request_log.entries(path=QUEUE)] == [200, 403], "a 403 is not retried"
    assert profile.tokens_issued(account_id) == 1, "a 403 asked for a new token"
