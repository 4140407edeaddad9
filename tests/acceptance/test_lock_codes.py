"""Access codes pushed to a lock provider (issue 24 part 3), end to end: a source partner's
simulator -> run-once daemons -> PostgreSQL -> push tasks -> the lock provider's simulator.

The source is Hostaway (any partner that syncs reservations would do: the push follows the
canonical rows); the lock provider is the Seam profile, with 10 % faults on its access-code
routes, "did the work, then lost the answer" included, and its idempotency-key support
switched off: the daemon must not rely on it.
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import orjson
import pytest

from syncd.app import Daemon
from syncd.config import Settings
from syncd.engine.access import desired_code
from syncd.simulator import fault_presets, limits
from syncd.simulator.fault_spec import CutParams, FaultSpec, Rule
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.hostaway.data import HostawayAccount
from syncd.simulator.profiles.hostaway.records import LISTING_ID0
from syncd.simulator.profiles.seam.data import SeamWorkspace
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store import access
from tests.support import (
    daemon_config,
    db_rows,
    integration,
    open_daemon,
    poll_until,
    settings_of,
    simulated_partner,
    write_config,
)

pytestmark = pytest.mark.anyio
SOURCE = ("pms", "58001", "sim-secret-1")
LOCKS = ("doors", "seam-acct-1", "seam_sim_key_1")
LISTINGS = 16
MAPPED = 12  # listings 0..11 have a lock; the others none


def simulator(*, failing: tuple[str, ...] = (), settle_s: float = 0.2) -> Simulator:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("hostaway", SOURCE[1], SOURCE[2], HostawayAccount(seed=11, listings=LISTINGS))
    options = DatasetOptions(
        extra={"settle_s": settle_s, "failing_devices": list(failing), "honour_idempotency": False}
    )
    workspace = sim.profile("seam").dataset(5, MAPPED, options)
    sim.add_account("seam", LOCKS[1], LOCKS[2], workspace)
    return sim


def devices() -> dict[str, str]:
    return {str(LISTING_ID0 + i): f"device_{i + 1}" for i in range(MAPPED)}


def lock_document(server: SimulatorServer, database_url: str, tmp_path: Path, **locks: Any) -> dict[str, Any]:
    source = integration(
        SOURCE[0],
        "hostaway",
        {"client_id": SOURCE[1], "client_secret": SOURCE[2]},
        ("properties", "reservations"),
    )
    doors = {
        "id": LOCKS[0],
        "partner": "seam",
        "credentials": {"api_key": LOCKS[2]},
        "locks": {"follows": SOURCE[0], "devices": devices(), "settle_poll_s": 0.2, **locks},
    }
    partners = {
        "hostaway": simulated_partner(server, "hostaway"),
        # Hangs wait 60 s; backoff kept short so the 10 % faults cost seconds, not minutes.
        "seam": simulated_partner(server, "seam", read_timeout_s=0.5, max_attempts=3),
    }
    document = daemon_config(database_url, partners, [source, doors], state_dir=tmp_path)
    document["daemon"]["retry_failed_after_s"] = 0
    return document


def lock_settings(server: SimulatorServer, database_url: str, tmp_path: Path, **locks: Any) -> Settings:
    return settings_of(lock_document(server, database_url, tmp_path, **locks))


async def open_pushes(database_url: str) -> int:
    rows = await db_rows(
        database_url, "SELECT count(*) FROM tasks WHERE kind = 'push' AND state IN ('pending', 'running')"
    )
    return int(rows[0][0])


async def converge(settings: Settings, database_url: str, runs: int = 8) -> None:
    """Run-once daemons until the source synced and no push waits."""
    for _ in range(runs):
        await Daemon(settings, once=True).run()
        synced = await db_rows(
            database_url,
            "SELECT count(*) FROM sync_state WHERE integration_id = $1 AND last_error IS NULL"
            " AND last_success_at IS NOT NULL",
            SOURCE[0],
        )
        if synced[0][0] == 2 and await open_pushes(database_url) == 0:
            return
    raise AssertionError(f"not converged after {runs} runs: {await open_pushes(database_url)} pushes open")


async def expected_codes(database_url: str, settings: Settings) -> dict[str, tuple[str, str, str]]:
    """name -> (device, starts, ends) of every code the source's reservations call for now,
    by the documented rule (``engine.access.desired_code``) applied to the stored rows."""
    locks = next(i.locks for i in settings.integrations if i.locks is not None)
    assert locks is not None
    conn = await asyncpg.connect(database_url)
    try:
        ids = [
            r[0]
            for r in await conn.fetch(
                "SELECT external_id FROM reservations WHERE integration_id = $1", SOURCE[0]
            )
        ]
        out: dict[str, tuple[str, str, str]] = {}
        for rid in ids:
            row = await access.source_row(conn, SOURCE[0], rid)
            code = desired_code(LOCKS[0], SOURCE[0], rid, row, locks)
            if code is not None:
                out[code.name] = (
                    code.device_id,
                    _z(code.starts_at.isoformat()),
                    _z(code.ends_at.isoformat()),
                )
        return out
    finally:
        await conn.close()


def _z(iso: str) -> str:
    return iso.replace("+00:00", ".000Z")


def lock_truth(workspace: SeamWorkspace) -> list[dict[str, Any]]:
    return [orjson.loads(line)["payload"] for line in workspace.truth()]


def assert_codes_match(workspace: SeamWorkspace, expected: dict[str, tuple[str, str, str]]) -> None:
    truth = lock_truth(workspace)
    per_name = Counter(c["name"] for c in truth)
    assert all(n == 1 for n in per_name.values()), f"two codes for one stay: {per_name.most_common(3)}"
    found = {c["name"]: (c["device_id"], c["starts_at"], c["ends_at"]) for c in truth}
    missing, extra = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    assert not missing and not extra, f"missing {missing[:3]}, extra (cancelled or gone) {extra[:3]}"
    wrong = [n for n in expected if found[n] != expected[n]]
    assert not wrong, f"{len(wrong)} codes with the wrong lock or times, e.g. {wrong[:2]}"
    assert {c["status"] for c in truth} <= {"set"}, Counter(c["status"] for c in truth)
    assert workspace.creations_by_key and max(workspace.creations_by_key.values()) == 1, (
        "a retry created a second code: " + str(workspace.creations_by_key.most_common(2))
    )


def lock_faults() -> FaultSpec:
    """10 % of the lock's calls faulted (RELIABILITY's mix: 5xx, hangs, resets, cut and
    garbled bodies), and one create in five carried out with its answer cut off, so that
    "done, answer lost" happens in every run, not by luck."""
    noisy = fault_presets.dirty_network(10, paths=("/access_codes/*",), accounts=(LOCKS[1],), seed=3)
    lost = Rule("truncated", 0.2, ("/access_codes/create",), (LOCKS[1],), params=CutParams(0.0, 0.5))
    return FaultSpec((lost, *noisy.rules), noisy.seed)


async def test_one_code_per_live_stay_through_bookings_changes_and_cancellations_with_faults(
    database_url: str, tmp_path: Path
) -> None:
    sim = simulator()
    source: HostawayAccount = sim.account(SOURCE[1])
    workspace: SeamWorkspace = sim.account(LOCKS[1])
    sim.set_faults(lock_faults())
    async with SimulatorServer(sim) as server:
        settings = lock_settings(server, database_url, tmp_path)
        await converge(settings, database_url)
        expected = await expected_codes(database_url, settings)
        assert len(expected) >= 10, "the scenario books stays at locked listings"
        assert_codes_match(workspace, expected)
        first = len(expected)

        # Bookings, modifications, cancellations (and listings deleted) at the source.
        cancelled_before = await cancelled(database_url)
        for seed in (1, 2, 3):
            summary = source.mutate(40, seed=seed)
            assert summary.reservations_updated or summary.reservations_inserted
            await converge(settings, database_url)
            assert_codes_match(workspace, await expected_codes(database_url, settings))
        assert await cancelled(database_url) > cancelled_before, "some stays were cancelled"

        faulted = [e for e in sim.request_log.entries() if e.fault and "/access_codes/" in e.path]
        assert faulted, "the lock calls went through the faults"
        lost = [
            e
            for e in faulted
            if e.path.endswith("/create") and e.fault in ("reset", "truncated", "malformed_json")
        ]
        assert lost, "some creates were carried out and their answers lost"
    assert first > 0


async def cancelled(database_url: str) -> int:
    rows = await db_rows(
        database_url,
        "SELECT count(*) FROM reservations WHERE integration_id = $1 AND status = 'canceled'",
        SOURCE[0],
    )
    return int(rows[0][0])


@pytest.mark.slow
async def test_kill_9_after_the_reservations_commit_still_pushes_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    """The outbox: a real ``syncd run`` commits the source's reservations (their push tasks in
    the same statements) while the lock provider cannot be reached, and is killed with
    SIGKILL before any code is pushed; a new process pushes every one of them."""
    sim = simulator()
    workspace: SeamWorkspace = sim.account(LOCKS[1])
    async with SimulatorServer(sim) as server:
        document = lock_document(server, database_url, tmp_path)
        live_url = document["partners"]["seam"]["base_url"]
        document["partners"]["seam"]["base_url"] = "http://127.0.0.1:9"  # refused: nothing sent
        config = write_config(document, tmp_path)
        first = await open_daemon(config)

        async def committed_with_pushes() -> bool:
            rows = await db_rows(
                database_url,
                "SELECT (SELECT count(*) FROM reservations WHERE integration_id = $1),"
                " (SELECT count(*) FROM tasks WHERE kind = 'push')",
                SOURCE[0],
            )
            return bool(rows[0][0] > 0 and rows[0][1] > 0)

        with anyio.fail_after(60):
            await poll_until(committed_with_pushes)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        assert workspace.codes == {}, "nothing reached the lock provider"
        waiting = await db_rows(
            database_url, "SELECT count(*) FROM tasks WHERE kind = 'push' AND state IN ('pending', 'running')"
        )
        assert waiting[0][0] > 0

        document["partners"]["seam"]["base_url"] = live_url
        config = write_config(document, tmp_path)
        command = [sys.executable, "-m", "syncd", "run", "--once", "--config", str(config)]
        with anyio.fail_after(120):
            second = await anyio.run_process(command, check=False)
        assert second.returncode == 0, second.stderr.decode()[-2000:]
        settings = settings_of(document)
        assert_codes_match(workspace, await expected_codes(database_url, settings))
