"""A two-minute partner outage (RELIABILITY row 17): the breaker opens, the partner sees at
most one probe per cool-down, the breaker closes within a cool-down of recovery, and
another integration keeps syncing throughout."""

from __future__ import annotations

import math
import time
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncd.app import Daemon
from syncd.http.breaker import DEFAULT_COOLDOWN_S, DEFAULT_PROBE_TIMEOUT_S
from syncd.simulator import fault_presets, limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import assert_matches_truth, db_rows, guesty_config, poll_until, settings_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
OUTAGE_S = 120.0
DOWN, UP = ("acme", "guesty-acct-1", "sim-secret-1"), ("beach", "guesty-acct-2", "sim-secret-2")


async def last_success(database_url: str, integration: str) -> float:
    rows = await db_rows(
        database_url,
        "SELECT coalesce(extract(epoch FROM min(last_success_at)), 0) FROM sync_state"
        " WHERE integration_id = $1",
        integration,
    )
    return float(rows[0][0])


async def test_outage_opens_the_breaker_probes_once_per_cooldown_and_recovers(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    down = sim.add_account("guesty", DOWN[1], DOWN[2], GuestyAccount(seed=1, listings=200))
    up = sim.add_account("guesty", UP[1], UP[2], GuestyAccount(seed=2, listings=200))
    async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
        document = guesty_config(
            server, database_url, [DOWN, UP], state_dir=tmp_path, web=True, interval_s=1.0, sweep_every_s=5.0
        )
        for integ in document["integrations"]:
            for res in integ["resources"].values():
                res["jitter"] = 0
        document["daemon"]["retry_failed_after_s"] = 1
        daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)

        async def both_synced() -> bool:
            return (
                await last_success(database_url, "acme") > 0 and await last_success(database_url, "beach") > 0
            )

        with anyio.fail_after(60):
            await poll_until(both_synced)

        sim.set_faults(fault_presets.outage(OUTAGE_S, accounts=[DOWN[1]], paths=("/v1/*",)))
        installed = time.time()
        await anyio.sleep(OUTAGE_S / 2)
        beach_mid = await last_success(database_url, "beach")
        assert beach_mid > installed, "the healthy integration kept syncing during the outage"
        down.mutate(20, seed=1)  # changes (deletions too) the partner serves once it is back
        await anyio.sleep(OUTAGE_S / 2 + DEFAULT_COOLDOWN_S + 10)

        # Every change the partner made meanwhile arrives.
        async def converged() -> bool:
            try:
                await assert_matches_truth(database_url, "acme", down)
            except AssertionError:
                return False
            return True

        with anyio.fail_after(DEFAULT_PROBE_TIMEOUT_S * 1.2 + 10):
            await poll_until(converged, interval_s=0.5)

        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{daemon.web_port}/metrics")).text
            ready = (await client.get(f"http://127.0.0.1:{daemon.web_port}/readyz")).json()
        daemon.request_stop()

    entries = [
        e
        for e in sim.request_log.entries(account=DOWN[1])
        if e.path.startswith("/guesty/v1/") and e.time >= installed
    ]
    faulted = [e.time for e in entries if e.fault]
    assert faulted, "the outage must have been hit"
    outage_end = faulted[0] + OUTAGE_S
    # The failures that opened the breaker come in one burst (retries included); it ends
    # at the first quiet spell. After it, probes only: the first one a cool-down after the
    # burst's last failure, each next one a cool-down after the previous.
    quiet = next((i for i in range(1, len(faulted)) if faulted[i] - faulted[i - 1] >= 10), len(faulted))
    burst, probes = faulted[:quiet], faulted[quiet:]
    # Two failed runs before it opens, each five attempts with full-jitter backoff (at most
    # 0.5 + 1 + 2 + 4 s) and 1 s apart: at most ~17 s, under a cool-down; seen at 11.5 s.
    assert burst[-1] - burst[0] < 20, "the breaker opened within one burst of failures"
    assert len(probes) <= OUTAGE_S / DEFAULT_COOLDOWN_S + 1
    gaps = [b - a for a, b in zip([burst[-1], *probes], probes, strict=False)]
    assert all(gap >= DEFAULT_COOLDOWN_S * 0.9 for gap in gaps), gaps
    # Closed within one cool-down (plus one probe) of recovery, then syncing again.
    recovered = [e.time for e in entries if e.status == 200 and e.time >= outage_end - 1]
    assert recovered and recovered[0] - outage_end <= DEFAULT_COOLDOWN_S + 5
    # Both resources sync again right after the close: the one whose run failed fast while
    # its sibling held the half-open probe is woken by the close, not a probe timeout later.
    soon = {e.path for e in entries if e.status == 200 and recovered[0] <= e.time <= recovered[0] + 5}
    assert {"/guesty/v1/listings", "/guesty/v1/reservations"} <= soon, soon
    states = {
        (s.labels["scope"], s.labels["state"]): s.value
        for f in text_string_to_metric_families(metrics)
        if f.name == "syncd_circuit_breaker_state"
        for s in f.samples
    }
    assert states[("acme", "closed")] == 1 and states[("beach", "closed")] == 1
    assert "open_breakers" not in ready.get("detail", {})
    await assert_matches_truth(database_url, "acme", down)
    await assert_matches_truth(database_url, "beach", up)


async def test_a_resource_refused_during_the_probe_syncs_as_soon_as_the_breaker_closes(
    database_url: str, tmp_path: Path
) -> None:
    """The probe after an outage is slow (3 s), so the sibling resource's run meets the
    breaker half-open with its one probe slot taken and fails fast. It used to wait out
    the probe timeout (15 s); the breaker's close now makes it due at once."""
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account(
        "guesty", DOWN[1], DOWN[2], GuestyAccount(seed=1, listings=100, reservations_per_listing=1)
    )
    partner = {"max_attempts": 1, "breaker": {"failure_threshold": 2, "cooldown_s": 2, "probe_timeout_s": 15}}

    def answered(since: float) -> list[float]:
        entries = sim.request_log.entries(account=DOWN[1])
        return [e.time for e in entries if e.status == 200 and e.time > since]

    async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
        document = guesty_config(
            server, database_url, [DOWN], state_dir=tmp_path, interval_s=1.0, sweep_every_s=None
        )
        for res in document["integrations"][0]["resources"].values():
            res["jitter"] = 0
        document["daemon"]["retry_failed_after_s"] = 1
        document["partners"]["guesty"].update(partner)
        daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)

        async def synced() -> bool:
            return await last_success(database_url, "acme") > 0

        async def probe_answered() -> bool:
            return bool(answered(installed))

        with anyio.fail_after(30):
            await poll_until(synced, interval_s=0.2)
        sim.set_faults(fault_presets.outage(6.0, paths=("/v1/*",)))
        installed = time.time()  # the request log's clock
        await anyio.sleep(5.0)
        sim.set_latency((3000, 3000))  # the first probe after the outage takes 3 s
        with anyio.fail_after(30):
            await poll_until(probe_answered)
        sim.set_latency(None)
        closed_at = answered(installed)[0]
        await anyio.sleep(8.0)
        daemon.request_stop()

    assert any(e.fault for e in sim.request_log.entries(account=DOWN[1])), "the outage must have been hit"
    after = [e for e in sim.request_log.entries(account=DOWN[1]) if e.status == 200 and e.time >= closed_at]
    first = {
        p: min((e.time for e in after if e.path == p), default=math.inf)
        for p in ("/guesty/v1/listings", "/guesty/v1/reservations")
    }
    # Both resources answered within a few seconds of the close, not a probe timeout later.
    assert max(first.values()) - closed_at < 6, first
