"""Airbnb's rotating refresh tokens under real contention: four real ``syncd run``
processes share one integration through several access-token expiries (a 3 s lifetime),
while the partner's data changes and its webhooks spread fetch tasks over all four (each
needs tokens when they expire, not only the process running the syncs). A refresh token
works once and rotates: the simulator refuses a reuse, counts it and revokes the family
(which would stop every process), so the counts below are the proof. The one-time
authorization code in the configuration is exchanged once, by whichever process gets the
credentials row lock first."""

from __future__ import annotations

import copy
import signal
import socket
from pathlib import Path

import anyio
import anyio.abc
import orjson
import pytest

from syncd import crypto
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions, WebhookHook
from syncd.simulator.profiles.airbnb.api import AirbnbProfile
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.simulator.webhooks import Subscription
from tests.support import (
    assert_table_matches,
    daemon_config,
    db_rows,
    integration,
    open_daemon,
    poll_until,
    simulated_partner,
    write_config,
)

pytestmark = pytest.mark.anyio

PARTNER = "airbnb"
PROCESSES = 4
TOKEN_TTL_S = 3
RUN_S = 14.0  # about four access-token lifetimes
TABLES = {"properties": "listings", "reservations": "reservations"}
HOOK_SECRET = "whsec-airbnb-test-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _truth(sim: Simulator, account_id: str, resource: str) -> list[tuple[str, object]]:
    profile = sim.profile(PARTNER)
    lines = (orjson.loads(line) for line in profile.truth(sim.account(account_id), resource))
    return [(str(r["id"]), r["payload"]) for r in lines]


async def _matches(database_url: str, sim: Simulator, account_id: str) -> bool:
    try:
        for resource in TABLES:
            await assert_table_matches(database_url, "shared", resource, _truth(sim, account_id, resource))
    except AssertionError:
        return False
    return True


async def test_four_processes_through_token_expiries_never_reuse_a_refresh_token(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(
        limit_settings=limits.LimitSettings(enabled=False), token_ttl_s=TOKEN_TTL_S, latency_ms=(2.0, 20.0)
    )
    profile = sim.profile(PARTNER)
    assert isinstance(profile, AirbnbProfile)
    account_id, secret = profile.credentials(1)
    sim.add_account(PARTNER, account_id, secret, profile.dataset(5, 300, DatasetOptions()))
    async with SimulatorServer(sim) as server:
        partner = simulated_partner(server, PARTNER, token_refresh_buffer_s=0.5)
        shared = integration(
            "shared", PARTNER, profile.config_credentials(account_id, secret), TABLES,
            interval_s=0.5, sweep_every_s=0.0,
        )  # fmt: skip
        shared["webhook_secrets"] = [HOOK_SECRET]
        base = daemon_config(database_url, {PARTNER: partner}, [shared], state_dir=tmp_path, web=True)
        base["secrets"] = {"keys": [crypto.generate_key()]}  # every process reads the same tokens
        base["daemon"] |= {"scheduler_tick_s": 0.2, "worker_concurrency": 2, "urgent_workers": 2}
        ports = [free_port() for _ in range(PROCESSES)]
        logs = [tmp_path / f"syncd-{n}.log" for n in range(PROCESSES)]
        processes: list[anyio.abc.Process] = []
        try:
            for n, log in enumerate(logs):
                document = copy.deepcopy(base)
                document["web"]["port"] = ports[n]
                (tmp_path / str(n)).mkdir()
                with log.open("wb") as stderr:
                    processes.append(
                        await open_daemon(write_config(document, tmp_path / str(n)), stderr=stderr)
                    )
            hook = WebhookHook(f"http://127.0.0.1:{ports[0]}/webhooks/{PARTNER}/shared", (HOOK_SECRET,))
            sim.webhooks.subscribe(account_id, Subscription(hook))
            for round_ in range(7):  # the partner's data changes (and says so) while tokens expire
                await anyio.sleep(RUN_S / 7)
                sim.mutate(account_id, 12, seed=round_)
            with anyio.move_on_after(60):  # a revoked family never converges: asserted below
                await poll_until(lambda: _matches(database_url, sim, account_id), 0.5)
        finally:
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            with anyio.fail_after(60):
                codes = [await p.wait() for p in processes]
        stderr_tails = {str(log): log.read_text()[-1500:] for log in logs}
        assert codes == [0] * PROCESSES, stderr_tails

    # The proof: no refresh token (and no code) was presented twice, across 4 processes.
    assert profile.reused == 0, stderr_tails
    assert profile.code_reused == 0
    assert profile.exchanges == 1  # the one-time code, exchanged once
    assert profile.refreshes >= 3, "the access token did not expire often enough to prove anything"
    assert not profile.revoked
    for resource in TABLES:  # and the data equals the truth
        await assert_table_matches(database_url, "shared", resource, _truth(sim, account_id, resource))
    rows = await db_rows(
        database_url,
        "SELECT outcome, count(*) FROM token_requests WHERE integration_id = 'shared' GROUP BY outcome",
    )
    outcomes = {r[0]: r[1] for r in rows}
    assert outcomes.get("ok") == profile.exchanges + profile.refreshes  # every token we got, audited
    assert "grant_refused" not in outcomes
    assert sim.webhooks.stats.delivered > 0
