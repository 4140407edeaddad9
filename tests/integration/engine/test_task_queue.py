"""TaskQueue against a real PostgreSQL: coalescing, the per-integration bound, claim order,
one running task per key, SKIP LOCKED, expiry, reclaim (lapsed leases and dead processes,
their holders' connections terminated), fencing of finish/retry, purge."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import anyio
import orjson
import pytest

from syncd import errors
from syncd.store.postgres import Store
from syncd.store.tasks import NewTask, Priority, Reclaimed, Task, TaskQueue, fetch_key, sync_key
from tests.support import db_rows

pytestmark = pytest.mark.anyio
OWNED = ["acme", "other"]
LEASE_S = 30.0


@contextlib.asynccontextmanager
async def opened(database_url: str, max_pending: int = 10_000) -> AsyncIterator[tuple[Store, TaskQueue]]:
    async with Store.open(database_url, min_size=1, max_size=8) as store:
        for integration_id in OWNED:
            resources = {"properties": (60.0, True), "reservations": (60.0, True)}
            await store.register_integration(integration_id, "guesty", True, resources)
        yield store, TaskQueue(store, max_pending_per_integration=max_pending)


def fetch(
    ext: str,
    priority: Priority = Priority.WEBHOOK,
    *,
    ids: list[str] | None = None,
    delay_s: float = 0.0,
    expires_in_s: float | None = None,
    max_attempts: int = 5,
) -> NewTask:
    key = fetch_key("acme", "properties", ext)
    params = {"ids": [ext] if ids is None else ids}
    return NewTask("acme", "properties", "fetch", priority, key, params, delay_s, expires_in_s, max_attempts)


def sync(
    integration_id: str = "acme", resource: str = "properties", priority: Priority = Priority.SCHEDULED
) -> NewTask:
    return NewTask(integration_id, resource, "sync", priority, sync_key(integration_id, resource))


async def rows(database_url: str, where: str = "true") -> list[dict[str, object]]:
    found = await db_rows(database_url, f"SELECT * FROM tasks WHERE {where} ORDER BY id")
    return [dict(r) for r in found]


async def claim(
    queue: TaskQueue,
    now: datetime,
    limit: int = 10,
    *,
    process: int = 0,
    lease_s: float = LEASE_S,
    max_priority: int = int(Priority.LOW),
) -> list[Task]:
    return await queue.claim(OWNED, now, limit, "test", lease_s, process, max_priority)


async def test_same_key_coalesces_into_one_pending_task(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        first = await queue.enqueue([fetch("p1", Priority.LOW, delay_s=60, expires_in_s=100, ids=["b"])], now)
        assert first.inserted == 1
        # The same key again: a higher priority, an earlier start, a later expiry, more ids.
        again = await queue.enqueue(
            [fetch("p1", Priority.USER, delay_s=10, expires_in_s=500, ids=["a", "b"])], now
        )
        assert (again.inserted, again.coalesced) == (0, 1)
        # A later, lower, shorter one lifts nothing, lowers nothing.
        await queue.enqueue([fetch("p1", Priority.LOW, delay_s=300, expires_in_s=50, ids=["c"])], now)
        (task,) = await rows(database_url)
        assert task["priority"] == Priority.USER
        assert task["not_before"] == now + timedelta(seconds=10)
        assert task["expires_at"] == now + timedelta(seconds=500)
        assert task["coalesced"] == 2
        assert task["enqueued_at"] == now
        assert orjson.loads(task["params"])["ids"] == ["a", "b", "c"]  # type: ignore[arg-type]

        # "Never expires" beats any expiry, whichever arrives first.
        await queue.enqueue([fetch("p2", expires_in_s=5)], now)
        await queue.enqueue([fetch("p2")], now)
        await queue.enqueue([fetch("p3")], now)
        await queue.enqueue([fetch("p3", expires_in_s=5)], now)
        for ext in ("p2", "p3"):
            (twin,) = await rows(database_url, f"dedupe_key = '{fetch_key('acme', 'properties', ext)}'")
            assert twin["expires_at"] is None, ext
        assert len(await rows(database_url)) == 3


async def test_a_key_that_finished_or_runs_takes_a_new_pending_task(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([sync()], now)
        (running,) = await claim(queue, now)
        assert (await queue.enqueue([sync()], now)).inserted == 1  # the running one absorbs nothing
        assert (await queue.enqueue([sync()], now)).coalesced == 1
        assert await queue.finish(running, "done")
        assert (await queue.enqueue([sync()], now)).coalesced == 1  # the pending twin is still there
        assert [r["state"] for r in await rows(database_url)] == ["done", "pending"]


async def test_targeted_work_past_the_bound_folds_into_one_sync(database_url: str) -> None:
    async with opened(database_url, max_pending=3) as (store, queue):
        now = await store.now()
        result = await queue.enqueue([fetch(f"p{i}") for i in range(8)], now)
        assert (result.inserted, result.folded, result.coalesced) == (4, 5, 4)
        found = await rows(database_url)
        assert sorted(str(r["kind"]) for r in found) == ["fetch", "fetch", "fetch", "sync"]
        (folded,) = [r for r in found if r["kind"] == "sync"]
        assert folded["dedupe_key"] == sync_key("acme", "properties")
        assert folded["priority"] == Priority.WEBHOOK  # the fetches' urgency, not the schedule's
        assert folded["expires_at"] is None
        # In a later call too, and per integration: another integration is not bounded by acme.
        later = await queue.enqueue([fetch("p99")], now)
        assert (later.folded, later.coalesced) == (1, 1)
        other = NewTask(
            "other", "properties", "fetch", 10, fetch_key("other", "properties", "x"), {"ids": ["x"]}
        )
        assert (await queue.enqueue([other], now)).inserted == 1
        # Syncs are not folded: the bound is on targeted work only.
        assert (await queue.enqueue([sync(resource="reservations")], now)).folded == 0


async def test_claims_come_in_priority_order_then_start(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue(
            [
                sync("acme", "properties", Priority.SCHEDULED),
                fetch("low", Priority.LOW),
                fetch("late-user", Priority.USER, delay_s=-5),
                fetch("early-user", Priority.USER, delay_s=-50),
                fetch("hook", Priority.WEBHOOK),
                fetch("future", Priority.USER, delay_s=3600),
            ],
            now,
        )
        order = []
        while batch := await claim(queue, now, limit=1):
            order.append(batch[0].key.rsplit(":", 1)[-1])
        assert order == ["early-user", "late-user", "hook", "properties", "low"]
        assert [t.key for t in await claim(queue, now + timedelta(hours=2))] == [
            fetch_key("acme", "properties", "future")
        ]


async def test_waiting_work_ages_up_to_the_webhook_band_but_never_past_a_user(database_url: str) -> None:
    """Aging: a band gained per ``aging_s`` waited, so a scheduled sync due a while ago goes
    before webhook fetches that keep arriving, and a child task after twice as long; a
    user's sync-now still goes first. Without aging the order is by priority alone."""

    def task(integration_id: str, name: str, priority: Priority, waited_s: float) -> tuple[NewTask, float]:
        kind = "sync" if name == "sync" else "fetch"
        key = f"{kind}:{integration_id}:properties:{name}"
        return NewTask(integration_id, "properties", kind, priority, key, {"ids": [name]}), waited_s

    async with opened(database_url) as (store, queue):
        now = await store.now()
        for integration_id in OWNED:
            for new, waited_s in (
                task(integration_id, "sync", Priority.SCHEDULED, 40),  # one band up: 10
                task(integration_id, "older-low", Priority.LOW, 70),  # two bands up: 10
                task(integration_id, "old-low", Priority.LOW, 40),  # one band up: 20
                task(integration_id, "new-low", Priority.LOW, 5),  # none: 30
                task(integration_id, "hook", Priority.WEBHOOK, 1),  # arrived a second ago
                task(integration_id, "user", Priority.USER, 0),  # a user asked just now
            ):
                await queue.enqueue([new], now - timedelta(seconds=waited_s))

        async def order(integration_id: str, aging_s: float | None) -> list[str]:
            claimed = []
            while batch := await queue.claim([integration_id], now, 1, "test", LEASE_S, 0, aging_s=aging_s):
                claimed.append(batch[0].key.rsplit(":", 1)[-1])
            return claimed

        assert await order("acme", 30.0) == ["user", "older-low", "sync", "hook", "old-low", "new-low"]
        assert await order("other", None) == ["user", "hook", "sync", "older-low", "old-low", "new-low"]


async def test_urgent_claims_take_only_urgent_work(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([sync(), fetch("low", Priority.LOW), fetch("hook")], now)
        urgent = await claim(queue, now, max_priority=int(Priority.WEBHOOK))
        assert [t.priority for t in urgent] == [Priority.WEBHOOK]
        assert await claim(queue, now, max_priority=int(Priority.WEBHOOK)) == []


async def test_never_two_running_tasks_of_one_key(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([sync(), fetch("p1")], now)
        first = await claim(queue, now)
        assert len(first) == 2
        await queue.enqueue([sync(priority=Priority.USER), fetch("p1")], now)
        # Due, urgent, and still not claimed while their twins run.
        assert await claim(queue, now) == []
        assert await queue.depth(OWNED, now) == []
        for task in first:
            assert await queue.finish(task, "done")
        second = await claim(queue, now)
        assert sorted(t.key for t in second) == sorted(t.key for t in first)
        assert {t.id for t in second}.isdisjoint(t.id for t in first)


async def test_a_claim_skips_rows_another_claimer_has_locked(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([fetch("p1", Priority.USER), fetch("p2")], now)
        (top,) = await rows(database_url, "priority = 0")
        async with store.connection() as other, other.transaction():
            # Another claimer in the middle of its claim holds the best row.
            await other.execute("SELECT id FROM tasks WHERE id = $1 FOR UPDATE", top["id"])
            with anyio.fail_after(5):  # SKIP LOCKED: no wait for the other claimer
                got = await claim(queue, now)
            assert [t.key for t in got] == [fetch_key("acme", "properties", "p2")]


async def test_concurrent_claimers_never_get_the_same_task(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([fetch(f"p{i}", Priority(10 * (i % 4))) for i in range(400)], now)
        got: dict[str, list[int]] = {}

        async def claimer(name: str) -> None:
            got[name] = []
            while batch := await queue.claim(OWNED, now, 7, name, LEASE_S, 0):
                got[name].extend(t.id for t in batch)

        async with anyio.create_task_group() as tg:
            for n in range(6):
                tg.start_soon(claimer, f"c{n}")
        claimed = [i for ids in got.values() for i in ids]
        assert len(claimed) == len(set(claimed)) == 400
        assert sum(1 for ids in got.values() if ids) >= 2, "the claims did not overlap at all"
        owners = await db_rows(database_url, "SELECT id, lease_owner, attempts FROM tasks")
        by_id = {i: name for name, ids in got.items() for i in ids}
        assert all(r["lease_owner"] == by_id[r["id"]] and r["attempts"] == 1 for r in owners)


async def test_tasks_past_their_expiry_are_expired_and_counted_not_claimed(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue(
            [fetch("soon", expires_in_s=60), fetch("later", expires_in_s=600), fetch("never"), sync()], now
        )
        assert await queue.expire(OWNED, now + timedelta(seconds=59)) == []
        assert await queue.expire(OWNED, now + timedelta(seconds=60)) == [("fetch", Priority.WEBHOOK)]
        left = await claim(queue, now + timedelta(seconds=60))
        assert sorted(t.key.rsplit(":", 1)[-1] for t in left) == ["later", "never", "properties"]
        # A running task is not expired under its worker.
        assert await queue.expire(OWNED, now + timedelta(hours=1)) == []
        (expired,) = await rows(database_url, "state = 'expired'")
        assert expired["finished_at"] is not None and expired["attempts"] == 0


async def test_a_lapsed_lease_is_reclaimed_and_its_holders_cut_off(database_url: str) -> None:
    async with opened(database_url) as (store, queue), queue.liveness() as (alive, _lost):
        now = await store.now()
        await queue.enqueue([fetch("p1", max_attempts=3)], now)
        (task,) = await claim(queue, now, lease_s=0.5, process=alive)
        async with store.task_session(task.integration_id, task.resource, task.lease) as session:
            assert await queue.reclaim(OWNED) == Reclaimed()  # its process lives, its lease runs
            await anyio.sleep(0.7)
            reclaimed = await queue.reclaim(OWNED)
            assert (reclaimed.requeued, reclaimed.terminated) == (1, 1)
            # The frozen worker's connection is gone: nothing it still sends can commit.
            with pytest.raises(errors.StoreUnavailable):
                await session.open_dead_letter_count()
        (row,) = await rows(database_url)
        assert row["state"] == "pending" and row["lease_owner"] is None
        assert "lease expired" in str(row["last_error"])
        # The old worker can neither end, retry nor renew it; a new session refuses to start.
        assert not await queue.finish(task, "done")
        assert await queue.retry(task, 0.0, "again") is None
        assert not await queue.renew(task, LEASE_S)
        with pytest.raises(errors.LeaseLost):
            async with store.task_session(task.integration_id, task.resource, task.lease):
                pass
        # The next claim takes it under a new token, and that one ends it.
        (again,) = await claim(queue, await store.now(), process=alive)
        assert again.id == task.id and again.lease_token != task.lease_token and again.attempts == 2
        assert await queue.finish(again, "done")


async def test_a_reclaimed_task_out_of_attempts_is_dead_and_a_twin_wins(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([fetch("p1", max_attempts=1), sync()], now)
        tasks = await claim(queue, now, lease_s=0.2)
        await queue.enqueue([sync(priority=Priority.USER)], now)  # a pending twin of the sync
        await anyio.sleep(0.4)
        reclaimed = await queue.reclaim(OWNED)
        assert (reclaimed.requeued, reclaimed.dead, reclaimed.lost) == (0, 1, 1)
        states = {
            r["kind"]: r["state"] for r in await rows(database_url, f"id IN ({tasks[0].id}, {tasks[1].id})")
        }
        assert states == {"fetch": "dead", "sync": "lost"}


async def test_a_task_whose_process_is_gone_is_reclaimed_before_its_lease_lapses(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([fetch("p1"), fetch("p2")], now)
        async with queue.liveness() as (alive, _lost):
            (mine,) = await claim(queue, now, limit=1, process=alive, lease_s=3600)
            # Claimed under a token nobody holds: its process is gone.
            (orphan,) = await claim(queue, now, limit=1, process=alive + 1, lease_s=3600)
            reclaimed = await queue.reclaim(OWNED)
            assert reclaimed.requeued == 1
            assert {r["id"]: r["state"] for r in await rows(database_url)} == {
                mine.id: "running",
                orphan.id: "pending",
            }
        # The process let go of its liveness lock (it exited, or its connection died).
        assert (await queue.reclaim(OWNED)).requeued == 1
        assert not await queue.finish(mine, "done")


async def test_a_worker_whose_liveness_connection_is_killed_sees_it(database_url: str) -> None:
    async with opened(database_url) as (_store, queue):
        async with queue.liveness() as (token, lost):
            await db_rows(
                database_url,
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND objid = $1::int::oid AND objsubid = 2",
                token,
            )
            with anyio.fail_after(5):
                await lost.wait()


async def test_finish_moves_the_schedule_and_retry_waits(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([sync(), fetch("p1")], now)
        tasks = {t.kind: t for t in await claim(queue, now)}
        assert await queue.finish(tasks["sync"], "done", next_in_s=120.0, outcome="ok")
        assert not await queue.finish(tasks["sync"], "done")  # once
        (schedule,) = await db_rows(
            database_url,
            "SELECT next_due_at - last_finished_at AS gap, last_outcome FROM schedules"
            " WHERE integration_id = 'acme' AND resource = 'properties'",
        )
        assert schedule["gap"] == timedelta(seconds=120) and schedule["last_outcome"] == "ok"
        assert await queue.retry(tasks["fetch"], 30.0, "partner down") == "pending"
        assert await claim(queue, now + timedelta(seconds=5)) == []
        db_now = await store.now()
        assert len(await claim(queue, db_now + timedelta(seconds=31))) == 1


async def test_purge_deletes_finished_tasks_past_retention_only(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([fetch("a"), fetch("b", expires_in_s=1), fetch("c")], now)
        await queue.expire(OWNED, now + timedelta(seconds=2))
        (a, c) = await claim(queue, now)
        assert await queue.finish(a, "done")
        assert await queue.purge(3600) == 0
        assert await queue.purge(0) == 2
        left = await rows(database_url)
        assert [(r["id"], r["state"]) for r in left] == [(c.id, "running")]


async def test_sync_now_lifts_a_waiting_sync_and_queues_behind_a_running_one(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([sync(), sync(resource="reservations")], now)
        (queued,) = await rows(database_url, "resource = 'reservations'")
        # Waiting: the request coalesces into it, at the user's priority, its wait kept.
        assert await store.sync_now("acme", "reservations") == ["reservations"]
        (lifted,) = await rows(database_url, "resource = 'reservations'")
        assert (lifted["id"], lifted["priority"], lifted["coalesced"]) == (queued["id"], Priority.USER, 1)
        assert lifted["enqueued_at"] == queued["enqueued_at"]
        # Running: the request queues a run after it (the running one may have read past the
        # change the user waits for), never beside it.
        (scheduled,) = await claim(queue, now, limit=1, max_priority=int(Priority.SCHEDULED) - 1)
        assert scheduled.id == lifted["id"]
        (props,) = await claim(queue, now)
        assert await store.sync_now("acme", "reservations") == ["reservations"]
        assert await claim(queue, await store.now()) == []
        assert await queue.finish(scheduled, "done", next_in_s=3600.0, outcome="ok")
        (after,) = await claim(queue, await store.now())
        assert (after.resource, after.priority) == ("reservations", Priority.USER)
        assert after.id != scheduled.id and props.resource == "properties"


async def test_a_claim_between_two_expiry_runs_skips_what_expired(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([fetch("stale", Priority.USER, expires_in_s=30), fetch("fresh")], now)
        got = await claim(queue, now + timedelta(seconds=31))
        assert [t.key for t in got] == [fetch_key("acme", "properties", "fresh")]
        assert await queue.expire(OWNED, now + timedelta(seconds=31)) == [("fetch", Priority.USER)]


async def test_a_claim_with_a_horizon_takes_later_work_but_nothing_expired(database_url: str) -> None:
    """Run-once claims every pending task however far its start was pushed back (a retry's
    backoff), but an expiry is judged at the claim's own time, not at the horizon."""
    async with opened(database_url) as (store, queue):
        now = await store.now()
        later = fetch("later", delay_s=3600, expires_in_s=7200)
        await queue.enqueue([later, fetch("stale", expires_in_s=10)], now)
        day = timedelta(days=1)
        got = await queue.claim(OWNED, now + timedelta(seconds=20), 10, "once", LEASE_S, 0, horizon=day)
        assert [t.key for t in got] == [later.key]


async def test_siblings_join_a_running_fetch_under_its_lease(database_url: str) -> None:
    """A burst of fetches for one integration x resource runs as one batch: the siblings
    share the claim's lease (renewed, ended and fenced with it); other resources, other
    kinds, work not yet due or expired, and keys already running stay out."""
    async with opened(database_url) as (store, queue):
        now = await store.now()
        # p2 already runs elsewhere (another worker's claim); a twin of it then waits.
        await queue.enqueue([fetch("p2")], now)
        (elsewhere,) = await claim(queue, now, limit=1)
        await queue.enqueue([fetch(f"p{n}") for n in range(1, 6)], now)
        await queue.enqueue([fetch("later", delay_s=600), fetch("stale", expires_in_s=0.1), sync()], now)
        other = NewTask(
            "acme", "reservations", "fetch", Priority.WEBHOOK, "fetch:acme:reservations:r1", {"ids": ["r1"]}
        )
        await queue.enqueue([other], now)
        (first,) = await claim(queue, now, limit=1)
        assert first.ids == ["p1"] and elsewhere.ids == ["p2"]
        await anyio.sleep(0.15)  # "stale" is past its expiry
        siblings = await queue.claim_siblings(first, await store.now(), 10)
        assert sorted(t.ids[0] for t in siblings) == ["p3", "p4", "p5"]
        assert {t.lease_token for t in siblings} == {first.lease_token}
        assert all(t.attempts == 1 for t in siblings)
        # Renewing the claim renews its siblings; finishing them ends them all.
        before = {r["id"]: r["lease_expires_at"] for r in await rows(database_url, "state = 'running'")}
        assert await queue.renew(first, 3600.0)
        after = {r["id"]: r["lease_expires_at"] for r in await rows(database_url, "state = 'running'")}
        for sibling in siblings:
            renewed, previous = after[sibling.id], before[sibling.id]
            assert isinstance(renewed, datetime) and isinstance(previous, datetime)
            assert renewed > previous
        assert await queue.finish_many([first, *siblings], "done") == 4
        assert await queue.finish_many([first, *siblings], "done") == 0  # ended already
        states = {r["id"]: r["state"] for r in await rows(database_url)}
        assert [states[t.id] for t in (first, *siblings)] == ["done"] * 4


async def test_a_released_or_lapsed_lease_takes_its_siblings_back(database_url: str) -> None:
    async with opened(database_url) as (store, queue):
        now = await store.now()
        await queue.enqueue([fetch(f"p{n}") for n in range(1, 4)], now)
        (first,) = await claim(queue, now, limit=1, lease_s=0.3)
        siblings = await queue.claim_siblings(first, now, 10)
        assert len(siblings) == 2
        # A stopping worker puts the whole lease back at once.
        assert await queue.release(first, 0.0, "interrupted by shutdown") == 3
        assert {r["state"] for r in await rows(database_url)} == {"pending"}
        # A lease that lapses is reclaimed with its siblings, and a stale worker ends nothing.
        (again,) = await claim(queue, await store.now(), limit=1, lease_s=0.3)
        more = await queue.claim_siblings(again, await store.now(), 10)
        await anyio.sleep(0.5)
        assert (await queue.reclaim(OWNED)).requeued == 3
        assert await queue.finish_many([again, *more], "done") == 0
        assert not await queue.renew(again, LEASE_S)
