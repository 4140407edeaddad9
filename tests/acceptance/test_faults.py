"""A dirty network (RELIABILITY row 6 mix) does not change what lands in the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.app import Daemon
from syncd.simulator import fault_presets, limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import assert_matches_truth, db_rows, guesty_config, settings_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
LISTINGS = 5000


def simulator(client_id: str) -> Simulator:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", client_id, "sim-secret-1", GuestyAccount(seed=21, listings=LISTINGS))
    return sim


def api_requests(sim: Simulator) -> int:
    return sum(
        n for (_a, _m, path, _s), n in sim.request_log.counters().items() if path.startswith("/guesty/v1/")
    )


async def sync_until_done(sim: Simulator, database_url: str, integration: str, tmp_path: Path) -> None:
    """Run-once daemons until both resources succeeded (a run may exhaust its retries)."""
    account = (integration, next(iter(sim.accounts)), "sim-secret-1")
    async with SimulatorServer(sim) as server:
        document = guesty_config(server, database_url, [account], state_dir=tmp_path, sweep_every_s=None)
        document["partners"]["guesty"]["read_timeout_s"] = 0.5  # the hang fault waits for 60 s
        document["daemon"]["retry_failed_after_s"] = 0
        for _ in range(5):
            await Daemon(settings_of(document), once=True).run()
            done = await db_rows(
                database_url,
                "SELECT count(*) FROM sync_state WHERE integration_id = $1 AND last_success_at IS NOT NULL",
                integration,
            )
            if done[0][0] == 2:
                return
    raise AssertionError("not synced after 5 runs")


async def test_twenty_percent_faults_of_every_kind_still_converge(database_url: str, tmp_path: Path) -> None:
    clean = simulator("guesty-acct-1")
    await sync_until_done(clean, database_url, "clean", tmp_path / "clean")

    # Same dataset, one request in five faulted across 5xx, hangs, resets mid-body,
    # truncated bodies and malformed JSON (the token endpoint is spared: it has a cap).
    faulty = simulator("guesty-acct-1")
    faulty.set_faults(fault_presets.dirty_network(20, paths=("/v1/*",), seed=5))
    await sync_until_done(faulty, database_url, "faulty", tmp_path / "faulty")

    account = faulty.account("guesty-acct-1")
    await assert_matches_truth(database_url, "clean", account)
    await assert_matches_truth(database_url, "faulty", account)
    faults = sum(faulty.request_log.fault_counters().values())
    assert faults >= 0.15 * api_requests(faulty), "the fault plan must actually have bitten"
    assert api_requests(faulty) <= 1.6 * api_requests(clean)
    # Nothing was applied twice: every record has exactly one 'created' event per integration.
    dupes = await db_rows(
        database_url,
        "SELECT integration_id, external_id FROM events GROUP BY 1, 2 HAVING count(*) > 1",
    )
    assert dupes == []
