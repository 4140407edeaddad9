"""Hostaway's documented auth and error quirks, end to end: the real daemon (``run --once``)
over loopback HTTP against the simulator profile, into PostgreSQL.

* a token the partner stops accepting is answered 403 (not 401): one new token, one resend;
* a new token is refused until 1 s after issue: the client never uses one earlier;
* ``{"status": "fail"}`` under HTTP 200 is a refusal: the run fails with the partner's
  message and the request is not retried; the next run recovers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.app import Daemon
from syncd.simulator import limits
from syncd.simulator.faults import Fault, FaultContext
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import daemon_config, db_rows, integration, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

PARTNER = "hostaway"
TOKEN_PATH = "/hostaway/v1/accessTokens"
LISTINGS = "/hostaway/v1/listings"


@dataclass
class OnNth:
    """A fault plan: ``fault`` for the ``nth`` (1-based) request to the API route ``path``."""

    path: str
    nth: int
    fault: Fault
    seen: int = 0

    def decide(self, ctx: FaultContext) -> Fault | None:
        if ctx.role != "api" or ctx.path != self.path:
            return None
        self.seen += 1
        return self.fault if self.seen == self.nth else None


def account(listings: int = 250) -> tuple[Simulator, str, dict[str, str]]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    sim.add_account(PARTNER, account_id, secret, profile.dataset(3, listings, DatasetOptions()))
    return sim, account_id, profile.config_credentials(account_id, secret)


async def run_once(server: SimulatorServer, database_url: str, credentials: dict[str, str], tmp: Path) -> str:
    """One ``run --once`` of a listings-only integration; its outcome."""
    partner = simulated_partner(server, PARTNER, page_size=50)
    document: dict[str, Any] = daemon_config(
        database_url,
        {PARTNER: partner},
        [integration("ha", PARTNER, credentials, ("properties",))],
        state_dir=tmp,
    )
    document["daemon"]["retry_failed_after_s"] = 0
    await Daemon(settings_of(document), once=True).run()
    [(outcome,)] = await db_rows(
        database_url, "SELECT last_outcome FROM schedules WHERE integration_id = 'ha'"
    )
    return str(outcome)


async def stored(database_url: str) -> int:
    [(count,)] = await db_rows(database_url, "SELECT count(*) FROM properties WHERE deleted_at IS NULL")
    return int(count)


async def test_a_token_revoked_mid_walk_is_answered_403_then_replaced_once(
    database_url: str, tmp_path: Path
) -> None:
    sim, _, credentials = account()
    # The partner invalidates the token just before the third listings page is served.
    sim.set_faults(OnNth("/v1/listings", 3, Fault(revoke_tokens=True, kind="revoke")))
    async with SimulatorServer(sim) as server:
        assert await run_once(server, database_url, credentials, tmp_path) == "ok"

    log = sim.request_log
    assert log.count(path=LISTINGS, status=403) == 1  # the revoked token, once
    assert log.count(method="POST", path=TOKEN_PATH, status=200) == 2  # the first, and one new
    # Every token was used only once warm: the profile answers 403 to a younger one.
    assert log.count(status=403) == 1
    assert await stored(database_url) == 250


async def test_a_fresh_integration_waits_out_the_warm_up_instead_of_meeting_a_403(
    database_url: str, tmp_path: Path
) -> None:
    sim, _, credentials = account(listings=60)
    async with SimulatorServer(sim) as server:
        assert await run_once(server, database_url, credentials, tmp_path) == "ok"
        assert await run_once(server, database_url, credentials, tmp_path) == "ok"
    assert sim.request_log.count(status=403) == 0
    assert sim.request_log.count(method="POST", path=TOKEN_PATH) == 1  # kept across runs
    assert await stored(database_url) == 60


async def test_the_profile_refuses_a_token_younger_than_a_second_with_403() -> None:
    """What the two tests above rely on: used at once, a new token is refused as Hostaway does."""
    now = [1000.0]
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), wall_clock=lambda: now[0])
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    sim.add_account(PARTNER, account_id, secret, profile.dataset(1, 3, DatasetOptions()))
    form = {"grant_type": "client_credentials", "client_id": account_id, "client_secret": secret}
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.url(PARTNER)) as http:
        issued = await http.post("/v1/accessTokens", data={**form, "scope": "general"})
        token = issued.json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        now[0] += 0.5
        young = await http.get("/v1/listings", headers=bearer)
        now[0] += 0.5
        warm = await http.get("/v1/listings", headers=bearer)
        wrong = await http.post("/v1/accessTokens", data={**form, "scope": "general", "client_secret": "x"})
    assert issued.status_code == 200 and issued.json()["token_type"] == "Bearer"
    assert (young.status_code, young.json()["status"]) == (403, "fail")
    assert warm.status_code == 200 and len(warm.json()["result"]) == 3
    assert wrong.status_code == 403


async def test_a_fail_status_under_http_200_fails_the_run_unretried_and_the_next_run_recovers(
    database_url: str, tmp_path: Path
) -> None:
    sim, _, credentials = account(listings=120)
    body = b'{"status":"fail","result":null,"message":"Listing sort order is not supported"}'
    sim.set_faults(OnNth("/v1/listings", 1, Fault(status=200, body=body, kind="fail_200")))
    async with SimulatorServer(sim) as server:
        with capture_logs() as logs:
            assert await run_once(server, database_url, credentials, tmp_path) == "failed"
        served_first = sim.request_log.count(path=LISTINGS)
        assert await run_once(server, database_url, credentials, tmp_path) == "ok"

    [failed] = [e for e in logs if e["event"] == "sync_failed"]
    assert failed["error_type"] == "PartnerRejected"
    assert "Listing sort order is not supported" in failed["error"]
    assert served_first == 1  # the refusal was not resent
    assert await stored(database_url) == 120
