"""Webhooks end to end: a daemon in this process serving real HTTP, the partner simulator
on loopback, real PostgreSQL.

What is proven: forged, replayed, oversized and malformed deliveries are refused with
nothing written; a delivery received three times is stored once and fetches its record
exactly once (counted at the simulator); old and new secrets both verify during a
rotation; reordered events leave the newest record; and a change at the partner shows up
in PostgreSQL without waiting for the (hour-long) sync interval, for every partner that
sends webhooks, through the simulator's own sender with duplicates, reordering and delays.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from syncd import svix
from syncd.app import WAKE_CHANNEL, Daemon
from syncd.simulator import limits
from syncd.simulator.fault_spec import FaultSpec, Rule, StatusParams
from syncd.simulator.profile import WebhookHook
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.simulator.webhooks import DeliveryFaults, Subscription
from syncd.store.postgres import Store
from syncd.store.tasks import NewTask, Priority, TaskQueue, fetch_key
from tests.support import daemon_config, db_rows, integration, poll_until, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

OLD_SECRET = "whsec_" + base64.b64encode(b"the-old-signing-key-32-bytes-lon").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"the-new-signing-key-32-bytes-lon").decode()
STRANGER = "whsec_" + base64.b64encode(b"somebody-elses-key-32-bytes-long").decode()
BASIC = "hook-user:hook-pass-0123"
URL_TOKEN = "tok_0123456789abcdef0123"
HMAC_SECRET = "hmac-shared-secret-0123456789"
SECRETS = {
    "guesty": [OLD_SECRET, NEW_SECRET],
    "hostaway": [BASIC],
    "cloudbeds": [URL_TOKEN],
    "airbnb": [HMAC_SECRET],
}
MAX_BODY = 4096
INTERVAL_S = 3600.0  # nothing but the first sync and the webhooks moves data in these tests
TIMEOUT_S = 60.0


@dataclass
class Stack:
    sim: Simulator
    server: SimulatorServer
    daemon: Daemon
    database_url: str
    ids: dict[str, str]  # partner -> integration id
    accounts: dict[str, str]  # partner -> simulator account id

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.daemon.web_port}"

    def url(self, partner: str, integration_id: str | None = None) -> str:
        return f"{self.base}/webhooks/{partner}/{integration_id or self.ids[partner]}"

    def guesty(self) -> GuestyAccount:
        data: GuestyAccount = self.sim.account(self.accounts["guesty"])
        return data


@contextlib.asynccontextmanager
async def stack(database_url: str, tmp_path: Path, *, listings: int = 40) -> AsyncIterator[Stack]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    accounts: dict[str, str] = {}
    for partner in SECRETS:
        (account,) = sim.add_accounts(partner, 1, seed=11, size=listings)
        accounts[partner] = account.id
    async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
        integrations = []
        ids = {}
        for partner, secrets in SECRETS.items():
            account = sim.accounts[accounts[partner]]
            ids[partner] = f"hooks-{partner}"
            document = integration(
                ids[partner],
                partner,
                sim.profile(partner).config_credentials(account.id, account.secret),
                ("properties", "reservations"),
                sweep_every_s=None,
                interval_s=INTERVAL_S,
            )
            integrations.append({**document, "webhook_secrets": secrets})
        # An integration whose webhooks are off (no secret): its route answers 404.
        quiet = integration("quiet-guesty", "guesty", {"client_id": "x", "client_secret": "y"}, ())
        document = daemon_config(
            database_url,
            {p: simulated_partner(server, p) for p in SECRETS},
            [*integrations, {**quiet, "enabled": True}],
            state_dir=tmp_path,
            web=True,
        )
        document["web"]["webhook_max_body_bytes"] = MAX_BODY
        daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)

        async def synced() -> bool:
            rows = await db_rows(
                database_url, "SELECT count(*) FROM schedules WHERE last_finished_at IS NULL"
            )
            return bool(rows[0][0] == 0)

        with anyio.fail_after(TIMEOUT_S):
            await poll_until(synced)
        try:
            yield Stack(sim, server, daemon, database_url, ids, accounts)
        finally:
            daemon.request_stop()


async def written(database_url: str) -> tuple[int, ...]:
    """What a webhook could have written: deliveries, tasks, rows' versions, events."""
    rows = await db_rows(
        database_url,
        """SELECT (SELECT count(*) FROM webhook_deliveries), (SELECT count(*) FROM tasks),
                  (SELECT coalesce(sum(version), 0) FROM properties),
                  (SELECT coalesce(sum(version), 0) FROM reservations), (SELECT count(*) FROM events)""",
    )
    return tuple(rows[0])


def listing_event(listing_id: str, name: str = "listing.updated") -> bytes:
    return orjson.dumps({"event": name, "listing": {"_id": listing_id}, "meta": {"eventId": "e1"}})


def signed(body: bytes, secrets: list[str], msg_id: str = "msg_1", at: float | None = None) -> dict[str, str]:
    stamp = int(time.time() if at is None else at)
    return {"content-type": "application/json", **svix.headers(secrets, msg_id, stamp, body)}


async def tasks_done(database_url: str, kind: str = "fetch") -> bool:
    rows = await db_rows(
        database_url, "SELECT count(*) FROM tasks WHERE kind = $1 AND state IN ('pending', 'running')", kind
    )
    return bool(rows[0][0] == 0)


async def test_forged_replayed_oversized_and_malformed_deliveries_write_nothing(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s, httpx.AsyncClient() as client:
        listing = s.guesty().listing_id(0)
        body = listing_event(listing)
        before = await written(database_url)
        url = s.url("guesty")

        async def post(status: int, content: Any, headers: dict[str, str], to: str = url) -> None:
            response = await client.post(to, content=content, headers=headers)
            assert response.status_code == status, response.text

        # Forged: signed with a secret the integration does not have; unsigned; the
        # signature of other bytes (the same JSON re-serialised).
        await post(401, body, signed(body, [STRANGER]))
        await post(401, body, {"content-type": "application/json"})
        await post(
            401, orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2), signed(body, [OLD_SECRET])
        )
        # Replayed: a genuine signature, ten minutes old (and one from the future).
        await post(401, body, signed(body, [OLD_SECRET], at=time.time() - 600))
        await post(401, body, signed(body, [OLD_SECRET], at=time.time() + 600))
        # Oversized: declared, and streamed without a Content-Length.
        big = b'{"event":"listing.updated","pad":"' + b"x" * MAX_BODY + b'"}'
        await post(413, big, signed(big, [OLD_SECRET]))

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(big), 1000):
                yield big[start : start + 1000]

        await post(413, chunks(), signed(big, [OLD_SECRET]))
        # Signed but not an event, or an event that names nothing: 400.
        for bad in (b"not json", b'{"event":"listing.updated","listing":{}}'):
            await post(400, bad, signed(bad, [OLD_SECRET]))
        # No such integration, the wrong partner, webhooks off (no secret): 404.
        await post(404, body, signed(body, [OLD_SECRET]), s.url("guesty", "nobody"))
        await post(404, body, signed(body, [OLD_SECRET]), s.url("hostaway", s.ids["guesty"]))
        await post(404, body, signed(body, [OLD_SECRET]), s.url("guesty", "quiet-guesty"))
        await post(404, body, signed(body, [OLD_SECRET]), s.url("acme", s.ids["guesty"]))
        # The other schemes: wrong Basic credentials, a wrong or missing URL token.
        reservation = orjson.dumps({"event": "reservation.updated", "data": {"id": 1}})
        wrong = base64.b64encode(b"hook-user:guess").decode()
        await post(401, reservation, {"authorization": f"Basic {wrong}"}, s.url("hostaway"))
        await post(401, reservation, {}, s.url("hostaway"))
        cloud = orjson.dumps({"event": "reservation/created", "reservationID": "1"})
        await post(401, cloud, {}, s.url("cloudbeds") + "?token=tok_guessed_0000000000")
        await post(401, cloud, {}, s.url("cloudbeds"))
        # An event type nobody acts on is acknowledged (partners retry non-2xx) and dropped.
        other = orjson.dumps({"event": "guest.created", "guest": {"_id": "g1"}})
        await post(200, other, signed(other, [OLD_SECRET]))

        assert await written(database_url) == before
        metrics = (await client.get(f"{s.base}/metrics")).text
        for result, count in (
            ("rejected_signature", 3),
            ("rejected_replay", 2),
            ("too_large", 2),
            ("bad_request", 2),
            ("ignored", 1),
        ):
            assert f'syncd_webhooks_total{{partner="guesty",result="{result}"}} {count}.0' in metrics
        assert 'syncd_webhooks_total{partner="other",result="unknown"} 1.0' in metrics
        assert 'syncd_webhooks_total{partner="hostaway",result="rejected_signature"} 2.0' in metrics
        for secret in (OLD_SECRET, NEW_SECRET, BASIC, URL_TOKEN):
            assert secret not in metrics


async def test_a_delivery_received_three_times_fetches_its_record_once(
    database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path) as s, httpx.AsyncClient() as client:
        listing = s.guesty().listing_id(3)
        body = listing_event(listing)
        s.sim.request_log.reset()
        for attempt in range(3):
            # A Svix retry keeps the message id and signs again with a new timestamp.
            response = await client.post(
                s.url("guesty"), content=body, headers=signed(body, [NEW_SECRET], "msg_x")
            )
            assert response.status_code == 200
            assert response.json()["status"] == ("accepted" if attempt == 0 else "duplicate")
        with anyio.fail_after(TIMEOUT_S):
            await poll_until(lambda: tasks_done(database_url))
        deliveries = await db_rows(database_url, "SELECT delivery_id, event, body FROM webhook_deliveries")
        assert [(r["delivery_id"], r["event"], bytes(r["body"])) for r in deliveries] == [
            ("msg_x", "listing.updated", body)
        ]
        tasks = await db_rows(
            database_url, "SELECT dedupe_key, priority, state FROM tasks WHERE kind = 'fetch'"
        )
        assert [tuple(r) for r in tasks] == [(f"fetch:{s.ids['guesty']}:properties:{listing}", 10, "done")]
        account = s.accounts["guesty"]
        assert s.sim.request_log.count(account=account, method="GET", path="/guesty/v1/listings/{id}") == 1
        assert s.sim.request_log.count(account=account) == 1


async def test_old_and_new_secrets_verify_during_a_rotation(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s, httpx.AsyncClient() as client:
        listing = s.guesty().listing_id(1)
        for n, (secrets, status) in enumerate(
            (([OLD_SECRET], 200), ([NEW_SECRET], 200), ([STRANGER, NEW_SECRET], 200), ([STRANGER], 401))
        ):
            body = listing_event(listing, "listing.updated")
            headers = signed(body, secrets, f"msg_rot_{n}")
            assert (await client.post(s.url("guesty"), content=body, headers=headers)).status_code == status
        rows = await db_rows(database_url, "SELECT delivery_id FROM webhook_deliveries ORDER BY id")
        assert [r[0] for r in rows] == ["msg_rot_0", "msg_rot_1", "msg_rot_2"]


async def test_reordered_events_leave_the_newest_record(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path) as s, httpx.AsyncClient() as client:
        data = s.guesty()
        listing = data.listing_id(5)
        i = data.listing_index(listing)
        assert i is not None
        bodies: list[bytes] = []
        for _ in range(2):  # two changes at the partner, each announced with the record then
            data.listing_table.update(i, data.listing_table.max_base_ts() + 60_000 * (len(bodies) + 1))
            record = data.get_listing(listing)
            assert record is not None
            bodies.append(b'{"event":"listing.updated","listing":%s}' % record)
        for n, body in enumerate(reversed(bodies)):  # the newer event arrives first
            headers = signed(body, [OLD_SECRET], f"msg_order_{n}")
            assert (await client.post(s.url("guesty"), content=body, headers=headers)).status_code == 200
            with anyio.fail_after(TIMEOUT_S):
                await poll_until(lambda: tasks_done(database_url))
        rows = await db_rows(
            database_url,
            "SELECT raw, version FROM properties WHERE integration_id = $1 AND external_id = $2",
            s.ids["guesty"],
            listing,
        )
        assert orjson.loads(rows[0]["raw"]) == orjson.loads(bodies[-1].split(b'"listing":', 1)[1][:-1])
        changes = await db_rows(
            database_url,
            "SELECT kind, version FROM events WHERE external_id = $1 AND kind <> 'created' ORDER BY id",
            listing,
        )
        # Both changes landed as one: the first fetch already read the newest record.
        assert [tuple(r) for r in changes] == [("updated", 2)]


async def last_event(database_url: str) -> int:
    rows = await db_rows(database_url, "SELECT coalesce(max(id), 0) FROM events")
    return int(rows[0][0])


async def changes_since(database_url: str, integration_id: str, event_id: int) -> int:
    rows = await db_rows(
        database_url,
        "SELECT count(*) FROM events WHERE integration_id = $1 AND id > $2",
        integration_id,
        event_id,
    )
    return int(rows[0][0])


@pytest.mark.parametrize(
    ("partner", "resources"),
    [
        ("guesty", ("properties", "reservations")),
        ("hostaway", ("reservations",)),
        ("cloudbeds", ("reservations",)),
        ("airbnb", ("properties", "reservations")),
    ],
)
async def test_a_change_at_the_partner_shows_up_without_waiting_for_the_interval(
    database_url: str, tmp_path: Path, partner: str, resources: tuple[str, ...]
) -> None:
    async with stack(database_url, tmp_path) as s:
        account, integration_id = s.accounts[partner], s.ids[partner]
        hook = WebhookHook(s.url(partner), tuple(SECRETS[partner][-1:]))
        faults = DeliveryFaults(duplicate=0.5, reorder=True, delay_s=(0.0, 0.3))
        s.sim.webhooks.subscribe(account, Subscription(hook, faults))
        before = await last_event(database_url)
        summary = s.sim.mutate(account, 30, seed=7)
        queued = summary["webhooks"]
        assert isinstance(queued, int) and queued > 0, summary
        with anyio.fail_after(TIMEOUT_S):
            await s.sim.webhooks.drained()
            await poll_until(lambda: tasks_done(database_url))
        assert s.sim.webhooks.stats.failed == 0
        assert s.sim.webhooks.stats.delivered > queued / 2
        # The changes landed through webhooks alone: no sync has run since the first ones.
        syncs = await db_rows(
            database_url,
            "SELECT count(*) FROM tasks WHERE kind = 'sync' AND integration_id = $1",
            integration_id,
        )
        assert syncs[0][0] == 2
        assert await changes_since(database_url, integration_id, before) > 0
        # Every change was applied once: no (record, version) has two change events.
        twice = await db_rows(
            database_url,
            "SELECT external_id, version FROM events WHERE integration_id = $1 "
            "GROUP BY resource, external_id, version HAVING count(*) > 1",
            integration_id,
        )
        assert twice == []
        # And nothing was missed: a sync now finds nothing newer than what webhooks brought.
        settled = await last_event(database_url)
        assert s.daemon.store is not None
        for resource in resources:
            await s.daemon.store.sync_now(integration_id, resource)
        with anyio.fail_after(TIMEOUT_S):
            await poll_until(lambda: tasks_done(database_url, "sync"))
        assert await changes_since(database_url, integration_id, settled) == 0
        if partner == "guesty":  # removed listings: the fetch found them gone, none is live
            removed = summary["listings"]["deleted"]  # type: ignore[index]
            rows = await db_rows(
                database_url,
                "SELECT count(*) FROM properties WHERE integration_id = $1 AND external_id = ANY($2) "
                "AND deleted_at IS NULL",
                integration_id,
                removed,
            )
            assert removed and rows[0][0] == 0


async def test_a_burst_of_fetches_runs_in_batches_and_a_failed_get_retries_alone(
    database_url: str, tmp_path: Path
) -> None:
    """Fetches waiting together for one integration x resource run as a few batches (each
    claim takes its siblings under its lease), not one session each; a record whose GET
    fails is retried with its own task while the others are done."""
    async with stack(database_url, tmp_path) as s:
        account = s.accounts["guesty"]
        listings = [s.guesty().listing_id(n) for n in range(30)]
        # The first three single-listing GETs of the burst are refused (400: not retried by
        # the client, so the fetch of that record fails).
        s.sim.set_faults(
            FaultSpec(
                (
                    Rule(
                        "status",
                        1.0,
                        ("/v1/listings/{id}",),
                        (account,),
                        to_request=3,
                        params=StatusParams((400,)),
                    ),
                )
            )
        )
        s.sim.request_log.reset()
        integration_id = s.ids["guesty"]
        burst = [
            NewTask(
                integration_id,
                "properties",
                "fetch",
                Priority.WEBHOOK,
                fetch_key(integration_id, "properties", listing),
                {"ids": [listing]},
            )
            for listing in listings
        ]
        async with Store.open(database_url, min_size=1, max_size=2) as store:
            queue = TaskQueue(store)
            async with store.connection() as conn, conn.transaction():
                await queue.enqueue(burst, await store.now(), conn)
                await conn.execute("SELECT pg_notify($1, $2)", WAKE_CHANNEL, integration_id)
        with anyio.fail_after(TIMEOUT_S):
            await poll_until(lambda: tasks_done(database_url))
        tasks = await db_rows(
            database_url, "SELECT state, attempts, lease_token, last_error FROM tasks WHERE kind = 'fetch'"
        )
        assert len(tasks) == len(listings) and {t["state"] for t in tasks} == {"done"}
        retried = [t for t in tasks if t["attempts"] == 2]
        assert len(retried) == 3
        # Every task of the first round was claimed in one of at most this many batches
        # (one per slot free when the burst landed), not 30.
        daemon = s.daemon.settings.daemon
        slots = daemon.worker_concurrency + daemon.urgent_workers
        first_round = {t["lease_token"] for t in tasks if t["attempts"] == 1}
        assert 1 <= len(first_round) <= slots < len(listings)
        gets = s.sim.request_log.count(account=account, method="GET", path="/guesty/v1/listings/{id}")
        assert gets == len(listings) + 3
