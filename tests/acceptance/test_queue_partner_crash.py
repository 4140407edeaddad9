"""kill -9 of a real ``syncd run`` between a queue page's commit and its acknowledgement.

The simulator holds the acknowledgement POST (``hold_acks``) until the daemon has committed
the first poll's reservations and is waiting on it; then the process is killed and the held
acknowledgement answered unprocessed. Meanwhile some of those reservations change at the
partner (still unacknowledged: they stay in the new queue with their newest state). A
second process drains the queue. Nothing is lost, nothing duplicated: the partner counts
redeliveries, every reservation has one row, byte-equal to the partner's, and its version
counts only real changes (a redelivered copy changes nothing; a modified one moves it on
once). The stored token survives the kill: the second process asks for none.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import orjson
import pytest

from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.booking_com.api import BookingProfile
from syncd.simulator.profiles.booking_com.data import BookingAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import daemon_config, db_rows, integration, poll_until, simulated_partner, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PARTNER = "booking_com"
SIZE, PER_POLL = 300, 100


async def test_kill_9_between_commit_and_acknowledgement_loses_and_duplicates_nothing(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    assert isinstance(profile, BookingProfile)
    account_id, secret = profile.credentials(1)
    options = DatasetOptions(extra={"per_poll": PER_POLL})
    data: BookingAccount = sim.add_account(PARTNER, account_id, secret, profile.dataset(5, SIZE, options))
    profile.hold_acks = release = anyio.Event()
    async with SimulatorServer(sim) as server:
        partner = simulated_partner(server, PARTNER, queue_empty_poll_s=0, queue_ack_pause_s=0)
        pinned = integration("k", PARTNER, profile.config_credentials(account_id, secret), ["reservations"])
        config = write_config(
            daemon_config(database_url, {PARTNER: partner}, [pinned], state_dir=tmp_path), tmp_path
        )
        command = [sys.executable, "-m", "syncd", "run", "--once", "--config", str(config)]

        first = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def committed_and_acknowledging() -> bool:
            rows = await db_rows(database_url, "SELECT count(*) FROM reservations WHERE integration_id = 'k'")
            return rows[0][0] == PER_POLL and profile.held_acks == 1

        with anyio.fail_after(60):
            await poll_until(committed_and_acknowledging)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        profile.hold_acks = None
        release.set()  # the held acknowledgement is answered 503, never applied
        await anyio.sleep(0.2)
        assert data.acks == 0 and data.pending()["new"] == SIZE, (
            "the kill must land before the acknowledgement"
        )

        before = await db_rows(database_url, "SELECT external_id, version FROM reservations")
        first_poll = {r["external_id"]: r["version"] for r in before}
        assert set(first_poll.values()) == {1}
        data.mutate(40, seed=3)  # some of the committed, unacknowledged reservations change

        with anyio.fail_after(120):
            second = await anyio.run_process(command, check=False)
        assert second.returncode == 0, second.stderr.decode()[-2000:]

    assert data.pending() == {"new": 0, "modified": 0}
    assert data.redeliveries > 0, "the unacknowledged poll was not delivered again"
    truth = {t["id"]: t for t in map(orjson.loads, profile.truth(data, "reservations"))}
    rows = await db_rows(
        database_url, "SELECT external_id, raw, version FROM reservations WHERE integration_id = 'k'"
    )
    stored = {r["external_id"]: (bytes(r["raw"]), r["version"]) for r in rows}
    assert len(rows) == len(stored) == len(truth), "a reservation lost or stored twice"
    assert all(stored[i][0] == t["payload"].encode() for i, t in truth.items()), "a row is not the partner's"
    for ident, (_, version) in stored.items():
        # Seen before the kill and changed since: one real change. Otherwise the redelivery
        # (or the only delivery) wrote it once.
        changed_after_commit = ident in first_poll and truth[ident]["revision"] > 1
        assert version == (2 if changed_after_commit else 1), (ident, version, truth[ident]["revision"])
    assert any(ident in first_poll and t["revision"] > 1 for ident, t in truth.items())
    created = await db_rows(
        database_url,
        "SELECT external_id, count(*) FROM events WHERE integration_id = 'k' AND kind = 'created'"
        " GROUP BY external_id HAVING count(*) > 1",
    )
    assert created == [], "a reservation was created twice"
    assert profile.issued_total[account_id] == 1, "the stored token did not survive the kill"
