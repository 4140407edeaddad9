"""Airbnb's authorization-code grant end to end: ``syncd authorize`` (a real process)
exchanges a one-time code once and exits 2, clearly, when the partner refuses it or the
code was sent before; a refused refresh token parks the integration for re-authorization
(status, metric, health) without a storm of token requests, and a new code revives it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd import admin, crypto, errors
from syncd.app import Daemon
from syncd.connectors import registry
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.airbnb.api import AirbnbProfile
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from tests.support import daemon_config, db_rows, integration, settings_of, simulated_partner, write_config

pytestmark = pytest.mark.anyio

PARTNER = "airbnb"
RESOURCES = ("properties", "reservations")
TOKEN_PATH = "/airbnb/v2/oauth2/authorizations"


class WallClock:
    """The simulator's clock for token expiry, stepped by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _simulator(clock: WallClock | None = None) -> tuple[Simulator, AirbnbProfile, str, str]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), wall_clock=clock or time.time)
    profile = sim.profile(PARTNER)
    assert isinstance(profile, AirbnbProfile)
    account_id, secret = profile.credentials(1)
    sim.add_account(PARTNER, account_id, secret, profile.dataset(3, 60, DatasetOptions()))
    return sim, profile, account_id, secret


def _document(
    server: SimulatorServer, database_url: str, credentials: dict[str, str], tmp_path: Path
) -> dict[str, Any]:
    document = daemon_config(
        database_url,
        {PARTNER: simulated_partner(server, PARTNER)},
        [integration("bnb", PARTNER, credentials, RESOURCES)],
        state_dir=tmp_path,
    )
    document["secrets"] = {"keys": [crypto.generate_key()]}
    return document


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


async def _syncd(*args: str) -> Ran:
    """A real ``syncd`` process (the simulator answers it from this event loop)."""
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, "-m", "syncd", *args], check=False)
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


async def test_syncd_authorize_exchanges_a_code_once_and_exits_2_when_refused(
    database_url: str, tmp_path: Path
) -> None:
    sim, profile, account_id, secret = _simulator()
    async with SimulatorServer(sim) as server:
        document = _document(
            server, database_url, {"client_id": account_id, "client_secret": secret}, tmp_path
        )
        config = write_config(document, tmp_path)
        code_file = tmp_path / "code"

        # The consent page, where the operator gets a code.
        page = await _syncd(
            "authorize", "bnb", "--url", "--redirect-uri", "https://ops.test/cb", "--config", str(config)
        )
        assert page.returncode == 0, page.stderr
        url = page.stdout.splitlines()[0]
        assert url.startswith(
            "https://www.airbnb.com/oauth2/auth?client_id=airbnb-client-1&redirect_uri=https"
        )
        assert "state=" in url and "then: syncd authorize bnb --code-file" in page.stdout

        # Not authorized yet: the run fails at once, saying what to do.
        once = await _syncd("run", "--once", "--config", str(config))
        assert once.returncode == 3
        assert sim.request_log.entries(path=TOKEN_PATH) == []  # nothing to send: no grant yet

        code_file.write_text(profile.mint_code(account_id) + "\n")
        done = await _syncd("authorize", "bnb", "--code-file", str(code_file), "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert "authorized" in done.stdout
        assert profile.exchanges == 1 and len(sim.request_log.entries(path=TOKEN_PATH)) == 1

        # The same code again: refused locally, never sent twice.
        again = await _syncd("authorize", "bnb", "--code-file", str(code_file), "--config", str(config))
        assert again.returncode == 2
        assert "sent to the partner before" in again.stderr and "get a new one" in again.stderr
        assert len(sim.request_log.entries(path=TOKEN_PATH)) == 1 and profile.code_reused == 0

        # A code the partner does not know: refused by the partner, exit 2, nothing stored.
        code_file.write_text("code-the-partner-never-issued")
        refused = await _syncd("authorize", "bnb", "--code-file", str(code_file), "--config", str(config))
        assert refused.returncode == 2
        assert "the partner refused the authorization code (400" in refused.stderr
        code_file.write_text("")
        empty = await _syncd("authorize", "bnb", "--code-file", str(code_file), "--config", str(config))
        assert empty.returncode == 2 and "no authorization code" in empty.stderr

        # The stored grant syncs (the run before parked the integration: authorize un-parked it).
        synced = await _syncd("run", "--once", "--config", str(config))
        assert synced.returncode == 0, synced.stderr[-2000:]
    rows = await db_rows(database_url, "SELECT count(*) FROM properties WHERE integration_id = 'bnb'")
    assert rows[0][0] == profile.describe(sim.account(account_id))["listings"]
    # The code never reached a log or the output (the daemon masks registered secrets).
    assert all(code not in (done.stdout + done.stderr + synced.stderr) for code in profile.spent_codes)


async def test_a_refused_refresh_token_parks_the_integration_without_a_storm_until_reauthorized(
    database_url: str, tmp_path: Path
) -> None:
    clock = WallClock()
    sim, profile, account_id, secret = _simulator(clock)
    credentials = profile.config_credentials(account_id, secret)  # a one-time code, used on first start
    async with SimulatorServer(sim) as server, Store.open(database_url) as store, Transports() as transports:
        settings = settings_of(_document(server, database_url, credentials, tmp_path))
        await store.register_integration("bnb", PARTNER, True, dict.fromkeys(RESOURCES, (3600.0, True)))
        tokens = CredentialStore(store, crypto.Cipher([s.get_secret_value() for s in settings.secrets.keys]))
        connector = registry.build_connector(
            settings.integrations[0],
            settings.partner(PARTNER),
            transport=transports.get(PARTNER, registry.egress(settings.partner(PARTNER), {})),
            tokens=tokens,
            metrics=Metrics(),
            log=get_logger(),
        )
        await connector.check_access()
        assert profile.exchanges == 1
        clock.offset += 2 * 86_400  # the access token expired: the next call refreshes
        await connector.check_access()
        assert profile.refreshes == 1

        # The partner revokes the grant (an operator disconnected the app, a reuse elsewhere).
        for _, family in list(profile.refresh.values()):
            profile._revoke_family(family)
        clock.offset += 2 * 86_400
        with pytest.raises(errors.AuthFailed, match="re-authorization needed"):
            await connector.check_access()
        token_requests = len(sim.request_log.entries(path=TOKEN_PATH))
        for _ in range(5):  # no storm: refused locally, the partner never asked again
            with pytest.raises(errors.AuthFailed, match="re-authorization needed"):
                await connector.check_access()
        assert len(sim.request_log.entries(path=TOKEN_PATH)) == token_requests
        assert profile.reused == 0  # the refused token was never presented twice

        # The daemon parks the integration: status, health and metric say so.
        metrics = Metrics()
        await Daemon(settings, once=True, metrics=metrics).run()
        status = await store.sync_status(["bnb"])
        assert {r["status"] for r in status} == {"auth_failed"}
        assert all("re-authorization needed" in (r["status_reason"] or "") for r in status)
        assert metrics.integration_auth_failed.labels("bnb")._value.get() == 1
        assert len(sim.request_log.entries(path=TOKEN_PATH)) == token_requests

        # A new code (syncd authorize) is a new grant: un-parked, the next run syncs and
        # clears the metric, without a restart.
        assert await admin.authorize(settings, "bnb", profile.mint_code(account_id)) == 0
        stored = await tokens.load_token("bnb")
        assert stored is not None and stored.grant_refused_at is None
        daemon = Daemon(settings, once=True, metrics=metrics)
        await daemon.run()
        assert daemon.summary().counts()["ok"] == len(RESOURCES)
        assert metrics.integration_auth_failed.labels("bnb")._value.get() == 0
        assert {r["status"] for r in await store.sync_status(["bnb"])} == {"active"}
        await connector.check_access()  # the driver built before re-reads the new grant
