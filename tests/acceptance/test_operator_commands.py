"""Operator commands as real processes: `syncd status`, `syncd dlq list`, `syncd dlq replay`."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.app import Daemon
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import (
    assert_matches_truth,
    db_rows,
    guesty_config,
    open_daemon,
    poll_until,
    settings_of,
    write_config,
)

pytestmark = pytest.mark.anyio
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")


async def syncd(config: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    """Run ``syncd <args> --config F --json`` and parse its JSON lines."""
    proc = await anyio.run_process(
        [sys.executable, "-m", "syncd", *args, "--config", str(config), "--json"], check=False
    )
    assert proc.returncode in (0, 1), proc.stderr.decode()
    return proc.returncode, [json.loads(line) for line in proc.stdout.decode().splitlines()]


async def test_dead_letters_are_listed_and_replayed_after_the_partner_repairs_them(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    malformed = frozenset({3, 250})
    account = sim.add_account(
        "guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=7, listings=300, malformed_listings=malformed)
    )
    repaired, still_bad = account.malformed_listing_ids()
    async with SimulatorServer(sim) as server:
        document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path)
        config = write_config(document, tmp_path)
        await Daemon(settings_of(document), once=True).run()

        code, status = await syncd(config, "status")
        assert code == 0
        by_resource = {row["resource"]: row for row in status}
        assert by_resource.keys() == {"properties", "reservations"}
        assert by_resource["properties"]["dead_letters"] == 2
        assert by_resource["reservations"]["dead_letters"] == 0
        assert all(row["last_outcome"] == "ok" and row["last_success_at"] for row in status)

        code, letters = await syncd(config, "dlq", "list")
        assert code == 0
        assert {row["external_id"] for row in letters} == {repaired, still_bad}
        assert all(row["resource"] == "properties" and row["attempts"] == 1 for row in letters)
        assert "payload" not in letters[0]

        # The partner fixes one record without bumping its timestamp: a sync would never see it.
        assert account.repair_listing(repaired)
        await Daemon(settings_of(document), once=True).run()
        stored = await db_rows(database_url, "SELECT 1 FROM properties WHERE external_id = $1", repaired)
        assert stored == []

        by_id = "/guesty/v1/listings/{id}"
        requests_before = sim.request_log.count(path=by_id)
        code, report = await syncd(config, "dlq", "replay")
        assert code == 1  # one record is still bad
        assert report == [
            {
                "integration": "acme",
                "resource": "properties",
                "busy": False,
                "fixed": 1,
                "still_bad": 1,
                "gone": 0,
                "unidentified": 0,
            }
        ]
        assert sim.request_log.count(path=by_id) == requests_before + 2  # one GET per open letter

    await assert_matches_truth(database_url, "acme", account)  # the repaired listing included
    letters_after = await db_rows(
        database_url, "SELECT external_id, attempts, resolved_at FROM dead_letters ORDER BY external_id"
    )
    state = {r["external_id"]: (r["attempts"], r["resolved_at"] is not None) for r in letters_after}
    assert state[repaired][1] is True
    # Still bad: the same open letter, one more attempt (the incremental sync did not re-read it).
    assert state[still_bad] == (2, False)
    events = await db_rows(database_url, "SELECT kind FROM events WHERE external_id = $1", repaired)
    assert [e["kind"] for e in events] == ["created"]


async def test_replay_fetches_reservations_by_id_and_resolves_records_the_partner_no_longer_has(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account(
        "guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=7, listings=20, reservations_per_listing=1)
    )
    async with SimulatorServer(sim) as server:
        document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path)
        config = write_config(document, tmp_path)
        await Daemon(settings_of(document), once=True).run()
        # As if an older adapter had refused one reservation: its row is missing, its letter open.
        kept = account.reservation_id(4)
        await db_rows(database_url, "DELETE FROM reservations WHERE external_id = $1", kept)
        # The third has no readable id (its bytes were too broken): nothing to fetch.
        for external_id in (kept, "64000063aaaaaaaaaaaaaaaa", "unidentified:0123456789ab"):
            await db_rows(
                database_url,
                "INSERT INTO dead_letters (integration_id, resource, external_id, error_class, reason)"
                " VALUES ('acme', 'reservations', $1, 'data', 'old adapter refused it')",
                external_id,
            )
        code, report = await syncd(config, "dlq", "replay", "--resource", "reservations")
    assert code == 0
    assert report == [
        {
            "integration": "acme",
            "resource": "reservations",
            "busy": False,
            "fixed": 1,
            "still_bad": 0,
            "gone": 1,
            "unidentified": 1,
        },
    ]
    await assert_matches_truth(database_url, "acme", account)
    still_open = await db_rows(database_url, "SELECT external_id FROM dead_letters WHERE resolved_at IS NULL")
    assert [r[0] for r in still_open] == ["unidentified:0123456789ab"]


async def test_rotate_secret_is_verified_stored_encrypted_and_used_for_later_tokens(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account(
        "guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=7, listings=20, reservations_per_listing=1)
    )
    async with SimulatorServer(sim) as server:
        document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path)
        config = write_config(document, tmp_path)
        await Daemon(settings_of(document), once=True).run()
        sim.accounts[ACCOUNT[1]].secret = "sim-secret-2"  # the partner issued a new secret

        command = [sys.executable, "-m", "syncd", "rotate-secret", "--config", str(config), "--integration"]
        # Refused by the partner (piped on stdin): nothing changes.
        refused = await anyio.run_process([*command, "acme"], input=b"not-the-secret\n", check=False)
        assert refused.returncode == 1, refused.stderr.decode()
        assert b"not-the-secret" not in refused.stdout + refused.stderr
        rows = await db_rows(database_url, "SELECT client_secret, secret_version FROM credentials")
        assert (rows[0]["client_secret"], rows[0]["secret_version"]) == (None, 0)

        env = {**os.environ, "SYNCD_NEW_CLIENT_SECRET": "sim-secret-2"}
        adopted = await anyio.run_process([*command, "acme"], env=env, check=False)
        assert adopted.returncode == 0, adopted.stderr.decode()
        assert b"secret_version 1" in adopted.stdout and b"sim-secret-2" not in adopted.stdout
        rows = await db_rows(database_url, "SELECT client_secret, secret_version FROM credentials")
        assert rows[0]["secret_version"] == 1
        assert rows[0]["client_secret"] and "sim-secret-2" not in rows[0]["client_secret"]  # encrypted

        # The config still names the old secret: later tokens use the stored, rotated one.
        await db_rows(database_url, "UPDATE credentials SET access_token = NULL, token_expires_at = NULL")
        tokens_before = sim.request_log.count(path="/guesty/oauth2/token", status=200)
        await Daemon(settings_of(document), once=True).run()
        assert sim.request_log.count(path="/guesty/oauth2/token", status=200) == tokens_before + 1
        outcomes = await db_rows(database_url, "SELECT last_outcome FROM schedules")
        assert {r["last_outcome"] for r in outcomes} == {"ok"}

        # Later the operator rotates through the configuration instead: the edited config
        # is newer than the stored secret, so it wins.
        sim.accounts[ACCOUNT[1]].secret = "sim-secret-3"
        document["integrations"][0]["credentials"]["client_secret"] = "sim-secret-3"
        await db_rows(database_url, "UPDATE credentials SET access_token = NULL, token_expires_at = NULL")
        await db_rows(database_url, "UPDATE schedules SET last_outcome = NULL")
        await Daemon(settings_of(document), once=True).run()
        assert sim.request_log.count(path="/guesty/oauth2/token", status=200) == tokens_before + 2
    outcomes = await db_rows(database_url, "SELECT last_outcome FROM schedules")
    assert {r["last_outcome"] for r in outcomes} == {"ok"}


async def test_sync_now_wakes_a_running_daemon_within_a_second(database_url: str, tmp_path: Path) -> None:
    """Nothing is due for an hour and the scheduler ticks every 60 s: only `sync-now`
    (schedules made due + NOTIFY) can start the run this soon."""
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account(
        "guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=7, listings=50, reservations_per_listing=1)
    )
    async with SimulatorServer(sim) as server:
        document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path, interval_s=3600)
        document["daemon"]["scheduler_tick_s"] = 60
        config = write_config(document, tmp_path)
        proc = await open_daemon(config)
        try:

            async def successes() -> dict[str, Any]:
                rows = await db_rows(database_url, "SELECT resource, last_success_at FROM sync_state")
                return {r["resource"]: r["last_success_at"] for r in rows if r["last_success_at"]}

            async def both_synced() -> bool:
                return len(await successes()) == 2

            with anyio.fail_after(60):
                await poll_until(both_synced)
            before = await successes()
            account.mutate(10, seed=3)
            await anyio.sleep(1.5)  # the daemon's listener is up well before this

            now = ("sync-now", "--integration", "acme", "--resource")
            code, _ = await syncd_plain(config, *now, "properties")
            assert code == 0
            asked = time.monotonic()

            async def properties_synced_again() -> bool:
                return bool((await successes())["properties"] > before["properties"])

            with anyio.fail_after(10):
                await poll_until(properties_synced_again)
            assert time.monotonic() - asked < 5  # the next tick would have been up to 60 s away
            assert (await successes())["reservations"] == before["reservations"]  # only what was asked
            code, _ = await syncd_plain(config, *now, "photos")
            assert code == 1  # nothing to sync
        finally:
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                await proc.wait()
    listings = await db_rows(database_url, "SELECT count(*) FROM properties WHERE deleted_at IS NULL")
    assert listings[0][0] == account.live_listing_count()


async def syncd_plain(config: Path, *args: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "syncd", *args, "--config", str(config)]
    proc = await anyio.run_process(command, check=False)
    return proc.returncode, proc.stdout.decode()
