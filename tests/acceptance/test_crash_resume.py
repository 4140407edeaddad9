"""kill -9 of a real ``syncd run`` mid-sync, then restart: converges, no duplicates, resumed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import orjson
import pytest

from syncd.connectors.pagination import parse_ts
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import assert_matches_truth, db_rows, guesty_config, poll_until, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")
OVERLAP_S = 5.0


async def test_kill_9_mid_sync_then_restart_resumes_from_checkpoint(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), latency_ms=(15.0, 25.0))
    account = sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=11, listings=5000))
    async with SimulatorServer(sim) as server:
        document = guesty_config(
            server, database_url, [ACCOUNT], state_dir=tmp_path, batch_size=200, overlap_s=OVERLAP_S,
            sweep_every_s=None,
        )  # fmt: skip
        config = write_config(document, tmp_path)
        command = [sys.executable, "-m", "syncd", "run", "--once", "--config", str(config)]

        first = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def committed_pages() -> bool:
            rows = await db_rows(
                database_url,
                "SELECT run_pages FROM sync_state WHERE integration_id = 'acme' AND resource = 'properties'",
            )
            return bool(rows and rows[0][0] >= 12)

        with anyio.fail_after(60):
            await poll_until(committed_pages)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        await anyio.sleep(0.5)  # requests the dead process had in flight are answered (and logged)
        before_restart = len(sim.request_log.entries(path="/guesty/v1/listings"))

        checkpoint_rows = await db_rows(
            database_url,
            "SELECT checkpoint, run_pages FROM sync_state"
            " WHERE integration_id = 'acme' AND resource = 'properties'",
        )
        checkpoint = orjson.loads(checkpoint_rows[0]["checkpoint"])
        pages_done = checkpoint_rows[0]["run_pages"]
        assert 12 <= pages_done < 50, "the kill must land mid-sync"
        # Committed rows never lag behind the checkpoint.
        committed = await db_rows(database_url, "SELECT count(*) FROM properties")
        assert committed[0][0] >= pages_done * 100 - 100

        with anyio.fail_after(120):
            second = await anyio.run_process(command, check=False)
        assert second.returncode == 0, second.stderr.decode()[-2000:]

        resumed = sim.request_log.entries(path="/guesty/v1/listings")[before_restart:]
        first_filter = orjson.loads(resumed[0].param("filters") or "[]")
        assert resumed[0].param("skip") == "0"
        resumed_from = parse_ts(first_filter[0]["value"])
        expected_from = parse_ts(checkpoint["updated_since"])
        assert resumed_from is not None and expected_from is not None
        assert (expected_from - resumed_from).total_seconds() == pytest.approx(OVERLAP_S)
        # It did not start over: the second process fetched what was left, plus a little overlap.
        data_pages = [e for e in resumed if e.param("fields") is None]  # not the deletion sweep's id pages
        assert len(data_pages) <= 50 - pages_done + 3
        assert sim.request_log.count(path="/guesty/oauth2/token") == 1  # the stored token survived the kill

    await assert_matches_truth(database_url, "acme", account)
    dupes = await db_rows(
        database_url,
        "SELECT resource, external_id FROM events GROUP BY 1, 2 HAVING count(*) > 1 "
        "UNION ALL SELECT 'properties', external_id FROM properties WHERE version <> 1 "
        "UNION ALL SELECT 'reservations', external_id FROM reservations WHERE version <> 1",
    )
    assert dupes == []
