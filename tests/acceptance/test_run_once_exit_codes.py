"""`syncd run --once` as cron runs it: a real process, its exit code, what it stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import orjson
import pytest

from syncd import cli
from syncd.simulator import fault_presets, limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.postgres import lock_key
from tests.support import assert_matches_truth, db_rows, guesty_config, write_config

pytestmark = pytest.mark.anyio
GOOD = ("acme", "guesty-acct-1", "sim-secret-1")
OTHER = ("beach", "guesty-acct-2", "sim-secret-2")
# A partner that misbehaves must fail the run in well under a second, not after minutes.
FAST_FAILURE = {
    "max_attempts": 1,
    "connect_timeout_s": 2.0,
    "read_timeout_s": 2.0,
    "request_deadline_s": 5.0,
}


class Invocation:
    """One finished ``syncd run --once``: its exit code and the events it logged."""

    def __init__(self, result: subprocess.CompletedProcess[bytes]) -> None:
        self.code = result.returncode
        self.stderr = result.stderr.decode()
        self.events: list[dict[str, Any]] = []
        for line in self.stderr.splitlines():
            try:
                self.events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                pass  # a non-JSON line (the one-line error of a config or runtime failure)

    def summary(self) -> dict[str, Any]:
        [event] = [e for e in self.events if e["event"] == "run_once_summary"]
        return event


async def run_once(config: Path) -> Invocation:
    command = [sys.executable, "-m", "syncd", "run", "--once", "--config", str(config)]
    with anyio.fail_after(60):
        return Invocation(await anyio.run_process(command, check=False))


def config_for(server: SimulatorServer, database_url: str, tmp_path: Path, *accounts: Any) -> dict[str, Any]:
    document = guesty_config(server, database_url, accounts, state_dir=tmp_path, interval_s=3600.0)
    document["daemon"]["log_level"] = "info"  # the run_once_summary event is logged at info
    document["partners"]["guesty"].update(FAST_FAILURE)
    return document


def simulator() -> Simulator:
    return Simulator(limit_settings=limits.LimitSettings(enabled=False))


async def row_count(database_url: str, integration_id: str) -> int:
    rows = await db_rows(
        database_url,
        "SELECT (SELECT count(*) FROM properties WHERE integration_id = $1)"
        " + (SELECT count(*) FROM reservations WHERE integration_id = $1)",
        integration_id,
    )
    return int(rows[0][0])


async def test_every_run_ok_exits_0_then_nothing_due_exits_0_without_calling_the_partner(
    database_url: str, tmp_path: Path
) -> None:
    sim = simulator()
    account = sim.add_account("guesty", GOOD[1], GOOD[2], GuestyAccount(seed=3, listings=40))
    async with SimulatorServer(sim) as server:
        config = write_config(config_for(server, database_url, tmp_path, GOOD), tmp_path)
        first = await run_once(config)
        assert first.code == cli.EXIT_OK, first.stderr[-2000:]
        counts = {k: first.summary()[k] for k in ("ok", "failed", "busy", "interrupted", "unfinished")}
        assert counts == {"ok": 2, "failed": 0, "busy": 0, "interrupted": 0, "unfinished": []}
        await assert_matches_truth(database_url, "acme", account)

        # An hour-long interval: nothing is due a moment later. Nothing left undone: 0.
        requests = len(sim.request_log.entries())
        second = await run_once(config)
        assert second.code == cli.EXIT_OK, second.stderr[-2000:]
        assert second.summary()["ok"] == 0 and second.summary()["failed"] == 0
        assert len(sim.request_log.entries()) == requests


async def test_a_failing_integration_exits_3_and_the_healthy_one_is_stored(
    database_url: str, tmp_path: Path
) -> None:
    sim = simulator()
    healthy = sim.add_account("guesty", GOOD[1], GOOD[2], GuestyAccount(seed=3, listings=40))
    sim.add_account("guesty", OTHER[1], OTHER[2], GuestyAccount(seed=4, listings=40))
    wrong_secret = (OTHER[0], OTHER[1], "not-the-secret")
    async with SimulatorServer(sim) as server:
        config = write_config(config_for(server, database_url, tmp_path, GOOD, wrong_secret), tmp_path)
        started = anyio.current_time()
        result = await run_once(config)
        elapsed = anyio.current_time() - started

    assert result.code == cli.EXIT_RUNS_FAILED == 3, result.stderr[-2000:]
    summary = result.summary()
    assert (summary["ok"], summary["failed"]) == (2, 2)
    assert summary["unfinished"] == ["beach/properties", "beach/reservations"]
    assert summary["level"] == "warning"
    failures = {e["resource"]: e["error_type"] for e in result.events if e["event"] == "sync_failed"}
    assert failures == {"properties": "AuthFailed", "reservations": "AuthFailed"}
    await assert_matches_truth(database_url, "acme", healthy)
    assert await row_count(database_url, "beach") == 0
    assert elapsed < 30


async def test_a_run_refused_by_an_open_breaker_exits_3(database_url: str, tmp_path: Path) -> None:
    sim = simulator()
    healthy = sim.add_account("guesty", GOOD[1], GOOD[2], GuestyAccount(seed=3, listings=40))
    sim.add_account("guesty", OTHER[1], OTHER[2], GuestyAccount(seed=4, listings=40))
    # The second account's data endpoints are down (its token endpoint still answers).
    sim.set_faults(fault_presets.outage(3600, accounts=[OTHER[1]], paths=("/v1/*",)))
    async with SimulatorServer(sim) as server:
        document = config_for(server, database_url, tmp_path, GOOD, OTHER)
        # One failure opens the account's breaker (a token request succeeded beside it);
        # one run at a time, so its sibling resource runs after and is refused by it.
        document["partners"]["guesty"]["breaker"] = {"failure_threshold": 1, "failure_ratio": 0.1}
        document["daemon"]["worker_concurrency"] = 1
        result = await run_once(write_config(document, tmp_path))

    assert result.code == cli.EXIT_RUNS_FAILED, result.stderr[-2000:]
    assert result.summary()["unfinished"] == ["beach/properties", "beach/reservations"]
    errors = sorted(e["error_type"] for e in result.events if e["event"] == "sync_failed")
    assert errors == ["CircuitOpen", "PartnerUnavailable"]
    states = await db_rows(database_url, "SELECT last_error FROM sync_state WHERE integration_id = 'beach'")
    assert any("circuit" in (r["last_error"] or "") for r in states), states
    await assert_matches_truth(database_url, "acme", healthy)


async def test_a_run_busy_in_another_process_is_not_a_failure(database_url: str, tmp_path: Path) -> None:
    sim = simulator()
    account = sim.add_account("guesty", GOOD[1], GOOD[2], GuestyAccount(seed=3, listings=40))
    async with SimulatorServer(sim) as server:
        config = write_config(config_for(server, database_url, tmp_path, GOOD), tmp_path)
        # As a running daemon (or the previous cron run) would: hold one run's lock.
        holder = await asyncpg.connect(database_url)
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", lock_key("acme", "reservations"))
            result = await run_once(config)
        finally:
            await holder.close()

    assert result.code == cli.EXIT_OK, result.stderr[-2000:]
    summary = result.summary()
    assert (summary["ok"], summary["busy"], summary["failed"]) == (1, 1, 0)
    reservations = await db_rows(database_url, "SELECT count(*) FROM reservations")
    properties = await db_rows(database_url, "SELECT count(*) FROM properties")
    assert (properties[0][0], reservations[0][0]) == (len(list(account.truth_listings())), 0)


async def test_a_bad_config_exits_2_naming_the_key_and_touches_nothing(
    database_url: str, tmp_path: Path
) -> None:
    sim = simulator()
    sim.add_account("guesty", GOOD[1], GOOD[2], GuestyAccount(seed=3, listings=40))
    async with SimulatorServer(sim) as server:
        document = config_for(server, database_url, tmp_path, GOOD)
        document["integrations"][0]["resources"]["properties"]["interval_s"] = -5
        result = await run_once(write_config(document, tmp_path))
        assert sim.request_log.entries() == []

    assert result.code == cli.EXIT_CONFIG == 2
    assert "integrations[0].resources.properties.interval_s" in result.stderr, result.stderr
    registered = await db_rows(database_url, "SELECT count(*) FROM schedules")
    assert registered[0][0] == 0
