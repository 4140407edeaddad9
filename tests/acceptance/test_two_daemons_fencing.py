"""Two real ``syncd run`` processes on one database never run the same task at once, even
when one is frozen (SIGSTOP) past its lease mid-sync and then resumed: the resumed one
commits nothing, the other finishes the work, and the rows equal the partner's truth.

The proof is the database's, not the logs': a test-only trigger records every committed row
write (table, backend pid, application_name, clock_timestamp) and each process names its
sessions through its database URL's application_name.
"""

from __future__ import annotations

import copy
import os
import signal
from datetime import datetime
from pathlib import Path

import anyio
import anyio.abc
import asyncpg
import pytest

from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.postgres import LEASE_PROCESS, LEASE_SESSION
from tests.support import assert_table_matches, db_rows, guesty_config, open_daemon, poll_until, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")
LEASE_S = float(os.environ.get("SYNCD_TEST_LEASE_S", "2"))
# Long enough for a run of 80 pages to span the freeze (the other daemon needs a lease and
# a tick to take the task over).
LATENCY_MS = (100.0, 150.0)
TIMEOUT_S = float(os.environ.get("SYNCD_TEST_TIMEOUT_S", "90"))
WRITE_LOG = """
CREATE TABLE write_log (
    id bigserial PRIMARY KEY, tbl text, op text, pid integer, app text, xid bigint,
    at timestamptz, task_id bigint, task_state text, lease_token integer
);
CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO write_log (tbl, op, pid, app, xid, at)
    VALUES (TG_TABLE_NAME, TG_OP, pg_backend_pid(), current_setting('application_name'),
            txid_current(), clock_timestamp());
    RETURN NULL;
END $$;
CREATE FUNCTION log_task_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO write_log (tbl, op, pid, app, xid, at, task_id, task_state, lease_token)
    VALUES (TG_TABLE_NAME, TG_OP, pg_backend_pid(), current_setting('application_name'),
            txid_current(), clock_timestamp(), NEW.id, NEW.state, NEW.lease_token);
    RETURN NULL;
END $$;
CREATE TRIGGER log_properties AFTER INSERT OR UPDATE OR DELETE ON properties
    FOR EACH ROW EXECUTE FUNCTION log_write();
CREATE TRIGGER log_events AFTER INSERT OR UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION log_write();
CREATE TRIGGER log_sync_state AFTER INSERT OR UPDATE OR DELETE ON sync_state
    FOR EACH ROW EXECUTE FUNCTION log_write();
CREATE TRIGGER log_dead_letters AFTER INSERT OR UPDATE OR DELETE ON dead_letters
    FOR EACH ROW EXECUTE FUNCTION log_write();
CREATE TRIGGER log_schedules AFTER INSERT OR UPDATE OR DELETE ON schedules
    FOR EACH ROW EXECUTE FUNCTION log_write();
CREATE TRIGGER log_tasks AFTER INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION log_task_write();
"""
DATA_TABLES = ("properties", "events", "sync_state", "dead_letters")


def named(database_url: str, app: str) -> str:
    return f"{database_url}{'&' if '?' in database_url else '?'}application_name={app}"


async def db_now(database_url: str) -> datetime:
    value: datetime = (await db_rows(database_url, "SELECT clock_timestamp()"))[0][0]
    return value


async def test_a_frozen_daemon_past_its_lease_commits_nothing_and_the_other_finishes(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), latency_ms=LATENCY_MS)
    account = sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=5, listings=8000))
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(WRITE_LOG)
    finally:
        await conn.close()
    async with SimulatorServer(sim) as server:
        base = guesty_config(
            server, database_url, [ACCOUNT], state_dir=tmp_path, sweep_every_s=None, batch_size=200,
            interval_s=3600,
        )  # fmt: skip
        del base["integrations"][0]["resources"]["reservations"]
        base["daemon"] |= {
            "task_lease_s": LEASE_S,
            "scheduler_tick_s": 0.2,
            "worker_concurrency": 2,
            "urgent_workers": 0,
        }
        processes: dict[str, anyio.abc.Process] = {}
        logs: dict[str, Path] = {}
        for app in ("syncd-a", "syncd-b"):
            document = copy.deepcopy(base)
            document["database"]["url"] = named(database_url, app)
            (tmp_path / app).mkdir()
            logs[app] = tmp_path / app / "stderr.log"
            with logs[app].open("wb") as stderr:
                processes[app] = await open_daemon(write_config(document, tmp_path / app), stderr=stderr)
        by_pid = {p.pid: app for app, p in processes.items()}
        try:
            await _freeze_the_runner_past_its_lease(database_url, processes, by_pid, logs)
        finally:
            for process in processes.values():
                if process.returncode is None:
                    process.send_signal(signal.SIGCONT)
                    process.terminate()
            with anyio.fail_after(30):
                codes = {app: await p.wait() for app, p in processes.items()}
        assert codes == {"syncd-a": 0, "syncd-b": 0}, {app: logs[app].read_text()[-2000:] for app in logs}

    truth = ((t.id, t.payload) for t in account.truth_listings())
    await assert_table_matches(database_url, "acme", "properties", truth)
    dupes = await db_rows(
        database_url,
        "SELECT external_id FROM events GROUP BY external_id HAVING count(*) > 1"
        " UNION ALL SELECT external_id FROM properties WHERE version <> 1",
    )
    assert dupes == []


async def _freeze_the_runner_past_its_lease(
    database_url: str,
    processes: dict[str, anyio.abc.Process],
    by_pid: dict[int, str],
    logs: dict[str, Path],
) -> None:
    async def running_with_pages() -> bool:
        rows = await db_rows(
            database_url,
            "SELECT t.lease_owner FROM tasks t JOIN sync_state s USING (integration_id, resource)"
            " WHERE t.state = 'running' AND s.run_pages >= 5",
        )
        return bool(rows)

    async def both_claiming() -> bool:
        rows = await db_rows(
            database_url,
            "SELECT DISTINCT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objsubid = 2",
            LEASE_PROCESS,
        )
        return {r[0] for r in rows} == set(processes)

    with anyio.fail_after(TIMEOUT_S):
        await poll_until(both_claiming)
        await poll_until(running_with_pages)
    (task,) = await db_rows(
        database_url, "SELECT id, lease_owner, lease_token FROM tasks WHERE state = 'running'"
    )
    frozen = by_pid[int(task["lease_owner"].rsplit(":", 1)[1])]
    other = next(app for app in processes if app != frozen)

    holders = [
        r[0]
        for r in await db_rows(
            database_url,
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid"
            " AND objid = $2::int::oid AND objsubid = 2",
            LEASE_SESSION,
            task["lease_token"],
        )
    ]
    processes[frozen].send_signal(signal.SIGSTOP)
    stopped_at = await db_now(database_url)
    await anyio.sleep(0.3)  # a renewal already sent may still commit
    (lease,) = await db_rows(
        database_url, "SELECT lease_token, lease_expires_at FROM tasks WHERE id = $1", task["id"]
    )
    assert lease["lease_token"] == task["lease_token"], "the task moved before its lease could lapse"
    lapsed_at: datetime = lease["lease_expires_at"]

    async def taken_over() -> bool:
        rows = await db_rows(
            database_url, "SELECT lease_owner, lease_token FROM tasks WHERE id = $1", task["id"]
        )
        owner = rows[0]["lease_owner"]
        return owner is not None and by_pid[int(owner.rsplit(":", 1)[1])] == other

    with anyio.fail_after(TIMEOUT_S):
        await poll_until(taken_over)
    # Woken as soon as the other took over (its lease had lapsed: a reclaim needs that), so
    # that it wakes while the other runs the task, whatever the box's speed.
    still_running = await db_rows(database_url, "SELECT state FROM tasks WHERE id = $1", task["id"])
    processes[frozen].send_signal(signal.SIGCONT)
    resumed_at = await db_now(database_url)

    async def done() -> bool:
        rows = await db_rows(database_url, "SELECT state FROM tasks WHERE id = $1", task["id"])
        return bool(rows[0][0] == "done")

    with anyio.fail_after(TIMEOUT_S):
        await poll_until(done)
    await anyio.sleep(2 * LEASE_S)  # the resumed process's leftovers have had their chance

    log = [dict(r) for r in await db_rows(database_url, "SELECT * FROM write_log ORDER BY id")]
    claims = [
        r for r in log if r["tbl"] == "tasks" and r["task_id"] == task["id"] and r["task_state"] == "running"
    ]
    tokens = list(dict.fromkeys(r["lease_token"] for r in claims))
    assert len(tokens) == 2, "claimed twice in all: by the frozen daemon, then by the other"
    first_claim = next(r for r in claims if r["lease_token"] == tokens[0])
    second_claim = next(r for r in claims if r["lease_token"] == tokens[1])
    assert (first_claim["app"], second_claim["app"]) == (frozen, other)

    # The frozen daemon committed nothing after its lease lapsed (nor after it woke up).
    assert resumed_at > lapsed_at
    late = [r for r in log if r["app"] == frozen and r["at"] >= lapsed_at]
    assert late == [], f"the frozen daemon committed after its lease lapsed: {late[:5]}"
    frozen_data = [r for r in log if r["app"] == frozen and r["tbl"] in DATA_TABLES]
    other_data = [r for r in log if r["app"] == other and r["tbl"] in DATA_TABLES]
    assert frozen_data and other_data, "both ran part of the sync"
    # Never at once: every write of the first owner precedes the second claim, which came
    # only after the first lease lapsed; the second owner wrote only after it. (A statement
    # sent just before the SIGSTOP may still run after it on the server: the lease, not the
    # signal, is the line.)
    assert max(r["at"] for r in frozen_data) < lapsed_at < second_claim["at"]
    assert stopped_at < lapsed_at
    assert min(r["at"] for r in other_data) > second_claim["at"]
    # The frozen one woke while the other ran the task, and the other ended it.
    assert still_running[0][0] == "running"
    (ended,) = [
        r for r in log if r["tbl"] == "tasks" and r["task_id"] == task["id"] and r["task_state"] == "done"
    ]
    assert (ended["app"], ended["lease_token"]) == (other, tokens[1])
    # The frozen daemon's session that held the lease was cut off by the reclaim.
    alive = await db_rows(
        database_url, "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])", holders
    )
    assert holders and alive == []
    (attempts,) = await db_rows(database_url, "SELECT attempts FROM tasks WHERE id = $1", task["id"])
    assert attempts[0] == 2
