"""The push outbox on a real PostgreSQL and the Seam simulator over loopback HTTP.

Reservations are written the way a sync writes them (``BatchWriter`` and the resource's
own statements), so the follow CTE that writes push tasks is the one every partner's
batches run. A run-once daemon then drives the lock integration only (the source is
configured but disabled: nothing else writes its rows).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from syncd.app import Daemon
from syncd.models import Reservation, ReservationStatus, values_of
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.seam.data import SeamWorkspace
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store import access
from syncd.store.postgres import BatchWriter, Store
from syncd.store.types import TABLES, Batch, create_staging_tables, row_for
from tests.support import daemon_config, db_rows, settings_of, simulated_partner

pytestmark = pytest.mark.anyio
SRC, LOCK = "src", "lk"
DEVICES = {"L1": "device_1", "L2": "device_2", "L3": "device_3"}
_clock = [0]


def stay(
    rid: str, listing: str = "L1", status: str = "confirmed", nights: tuple[int, int] = (10, 13), **more: Any
) -> Reservation:
    _clock[0] += 1
    return Reservation(
        external_id=rid,
        source_updated_at=datetime(2025, 1, 1, tzinfo=UTC).replace(
            second=_clock[0] % 60, minute=_clock[0] // 60
        ),
        property_external_id=listing,
        status=ReservationStatus(status),
        partner_status=status,
        check_in_date=date(2025, 3, nights[0]),
        check_out_date=date(2025, 3, nights[1]),
        **more,
    )


async def write(store: Store, *stays: Reservation) -> None:
    """``stays`` as one sync batch of the source integration."""
    async with store.connection() as conn:
        await conn.execute(create_staging_tables())
        writer = BatchWriter(conn, SRC, TABLES["reservations"])
        raw = [orjson.dumps(s.model_dump(mode="json")) for s in stays]
        await writer.apply(
            Batch(rows=[row_for(writer.spec, values_of(s), r) for s, r in zip(stays, raw, strict=True)])
        )


async def delete(store: Store, *ids: str) -> None:
    """The deletion sweep's soft delete."""
    async with store.connection() as conn:
        await conn.fetchval(TABLES["reservations"].sql.soft_delete, SRC, list(ids))


async def pushes(database_url: str) -> list[tuple[str, str]]:
    """(dedupe key, state) of every push task, oldest first."""
    rows = await db_rows(database_url, "SELECT dedupe_key, state FROM tasks WHERE kind = 'push' ORDER BY id")
    return [(r["dedupe_key"], r["state"]) for r in rows]


def key(rid: str) -> str:
    return f"push:{LOCK}:{SRC}:{rid}"


def document(
    server: SimulatorServer | None, database_url: str, tmp_path: Path, devices: dict[str, str] = DEVICES
) -> dict[str, Any]:
    seam = simulated_partner(server, "seam") if server else {"base_url": "http://127.0.0.1:9/seam"}
    hostaway = simulated_partner(server, "hostaway") if server else {"base_url": "http://127.0.0.1:9/v1"}
    source = {
        "id": SRC,
        "partner": "hostaway",
        "enabled": False,
        "credentials": {"client_id": "1", "client_secret": "x"},
        "resources": {"reservations": {}},
    }
    lock = {
        "id": LOCK,
        "partner": "seam",
        "credentials": {"api_key": "seam_sim_key_1"},
        "locks": {"follows": SRC, "devices": devices, "timezone": "Europe/Paris", "settle_poll_s": 0.1,
                  "settle_timeout_s": 30},
    }  # fmt: skip
    return daemon_config(
        database_url, {"seam": seam, "hostaway": hostaway}, [source, lock], state_dir=tmp_path
    )


async def registered(database_url: str, tmp_path: Path, devices: dict[str, str] = DEVICES) -> None:
    """What a daemon does at start: integrations, then followers."""
    from syncd.app import open_store

    settings = settings_of(document(None, database_url, tmp_path, devices))
    async with open_store(settings, database_url):
        pass


async def test_reservation_changes_write_their_push_in_the_same_statement(
    database_url: str, tmp_path: Path
) -> None:
    await registered(database_url, tmp_path)
    async with Store.open(database_url) as store:
        await write(store, stay("R1"), stay("R2", listing="L9"))  # L9 has no lock
        assert await pushes(database_url) == [(key("R1"), "pending")]

        await write(store, stay("R1", guest_name="Ada"))  # not a trigger field: coalesces nothing
        rows = await db_rows(database_url, "SELECT coalesced FROM tasks WHERE kind = 'push'")
        assert [r[0] for r in rows] == [0]

        await write(store, stay("R1", nights=(10, 12)))  # shortened: absorbed by the pending push
        rows = await db_rows(database_url, "SELECT coalesced, params FROM tasks WHERE kind = 'push'")
        assert [r[0] for r in rows] == [1]
        assert orjson.loads(rows[0][1]) == {"source": SRC, "ids": ["R1"]}

        await db_rows(database_url, "UPDATE tasks SET state = 'done' WHERE kind = 'push'")
        await write(store, stay("R2", listing="L9", status="canceled"))  # still no lock there
        assert [k for k, s in await pushes(database_url) if s == "pending"] == []
        await write(store, stay("R1", listing="L9"))  # moved away from its lock: revoke it
        await write(store, stay("R3", listing="L2"))
        await delete(store, "R3")  # the sweep: pushed again (pending twin absorbs it)
        pending = [k for k, s in await pushes(database_url) if s == "pending"]
        assert pending == [key("R1"), key("R3")]

    # Re-registered with another listing mapped: a push for every stay of the keys that changed.
    await db_rows(database_url, "UPDATE tasks SET state = 'done' WHERE kind = 'push'")
    await registered(database_url, tmp_path, {**DEVICES, "L9": "device_9"})
    assert sorted(k for k, s in await pushes(database_url) if s == "pending") == sorted(
        [key("R1"), key("R2"), key("R3")]
    )
    await registered(database_url, tmp_path, {**DEVICES, "L9": "device_9"})  # unchanged: nothing more
    assert len([s for _, s in await pushes(database_url) if s == "pending"]) == 3


def seam_simulator(**extra: Any) -> Simulator:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    workspace = sim.profile("seam").dataset(1, 3, DatasetOptions(extra={"settle_s": 0.1, **extra}))
    sim.add_account("seam", "seam-acct-1", "seam_sim_key_1", workspace)
    return sim


def truth(workspace: SeamWorkspace) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in (orjson.loads(line)["payload"] for line in workspace.truth())}


async def test_a_moved_stay_updates_its_code_and_a_cancelled_one_revokes_it(
    database_url: str, tmp_path: Path
) -> None:
    sim = seam_simulator()
    workspace: SeamWorkspace = sim.account("seam-acct-1")
    async with SimulatorServer(sim) as server:
        settings = settings_of(document(server, database_url, tmp_path))
        await registered(database_url, tmp_path)
        async with Store.open(database_url) as store:
            await write(store, stay("R1"), stay("R2", listing="L2"), stay("R3", listing="L3"))
            await Daemon(settings, once=True).run()
            codes = truth(workspace)
            assert sorted(codes) == [f"syncd:{SRC}:R1", f"syncd:{SRC}:R2", f"syncd:{SRC}:R3"]
            # Paris in March is UTC+1: 15:00 local is 14:00Z, 11:00 local 10:00Z.
            r1 = codes[f"syncd:{SRC}:R1"]
            assert (r1["device_id"], r1["starts_at"], r1["ends_at"]) == (
                "device_1",
                "2025-03-10T14:00:00.000Z",
                "2025-03-13T10:00:00.000Z",
            )
            assert {c["status"] for c in codes.values()} == {"set"}

            await write(
                store,
                stay("R1", nights=(11, 12)),
                stay("R2", listing="L3"),
                stay("R3", listing="L3", status="canceled"),
            )
            await Daemon(settings, once=True).run()
        codes = truth(workspace)
        assert sorted(codes) == [f"syncd:{SRC}:R1", f"syncd:{SRC}:R2"]
        r1 = codes[f"syncd:{SRC}:R1"]
        assert (r1["starts_at"], r1["ends_at"]) == ("2025-03-11T14:00:00.000Z", "2025-03-12T10:00:00.000Z")
        assert codes[f"syncd:{SRC}:R2"]["device_id"] == "device_3"  # moved listings: moved locks
        assert workspace.updated == 1 and workspace.deleted == 2  # R2 off device_2, R3 revoked
        assert max(workspace.creations_by_key.values()) == 1
    states = await db_rows(database_url, "SELECT reservation_id, state FROM access_codes ORDER BY 1")
    assert [tuple(r) for r in states] == [("R1", "set"), ("R2", "set"), ("R3", "removed")]


async def test_a_code_the_lock_refuses_is_a_dead_letter_and_a_metric(
    database_url: str, tmp_path: Path
) -> None:
    sim = seam_simulator(failing_devices=["device_2"])
    async with SimulatorServer(sim) as server:
        settings = settings_of(document(server, database_url, tmp_path))
        await registered(database_url, tmp_path)
        async with Store.open(database_url) as store:
            await write(store, stay("R1"), stay("R2", listing="L2"))
            metrics = Metrics()
            await Daemon(settings, once=True, metrics=metrics).run()
            counts = await access.counts(store, [LOCK])
    assert counts == {LOCK: {"set": 1, "failed": 1}}
    letters = await db_rows(
        database_url,
        "SELECT resource, external_id, error_class, reason FROM dead_letters WHERE resolved_at IS NULL",
    )
    assert [(r[0], r[1], r[2]) for r in letters] == [("access_codes", f"{SRC}:R2", "push")]
    assert "failed_to_set_on_device" in letters[0][3] and "device_2" in letters[0][3]
    sample = metrics.registry.get_sample_value
    assert sample("syncd_push_total", {"partner": "seam", "action": "settle", "outcome": "failed"}) == 1
    assert sample("syncd_push_total", {"partner": "seam", "action": "create", "outcome": "ok"}) == 2
    assert sample("syncd_access_codes", {"integration": LOCK, "state": "failed"}) == 1
    assert (
        sample(
            "syncd_dead_letters_total", {"partner": "seam", "resource": "access_codes", "error_class": "push"}
        )
        == 1
    )

    # The lock is repaired; the operator replays the letter: the refused code is deleted and a
    # new one asked for (with a key of its own), and the letter resolves once it is set.
    from syncd import admin

    workspace: SeamWorkspace = sim.account("seam-acct-1")
    refused = [c.id for c in workspace.codes.values() if c.device_id == "device_2"]
    workspace.failing_devices.clear()
    async with SimulatorServer(sim) as server:
        settings = settings_of(document(server, database_url, tmp_path))
        assert await admin.dlq_replay(settings, LOCK, "access_codes", [], 100, as_json=True) == 0
        await Daemon(settings, once=True).run()
    async with Store.open(database_url) as store:
        assert await access.counts(store, [LOCK]) == {LOCK: {"set": 2}}
    assert refused and refused[0] not in workspace.codes
    assert sorted(c.device_id for c in workspace.codes.values()) == ["device_1", "device_2"]
    assert max(workspace.creations_by_key.values()) == 1
    letters = await db_rows(database_url, "SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL")
    assert letters[0][0] == 0


async def test_status_shows_codes_by_state_and_failures_never_a_code(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syncd import admin
    from syncd.web import board, status_page

    sim = seam_simulator(failing_devices=["device_2"])
    workspace: SeamWorkspace = sim.account("seam-acct-1")
    async with SimulatorServer(sim) as server:
        settings = settings_of(document(server, database_url, tmp_path))
        await registered(database_url, tmp_path)
        async with Store.open(database_url) as store:
            await write(store, stay("R1"), stay("R2", listing="L2"))
            daemon = Daemon(settings, once=True)
            await daemon.run()
            entry = board.access_codes_entry(
                {LOCK: SRC}, await access.counts(store, [LOCK]), await access.failures(store, [LOCK])
            )
    pins = [c.pin for c in workspace.codes.values()]
    assert len(pins) == 2
    page = status_page.render({"now": datetime.now(UTC).isoformat(), "access_codes": entry})
    assert "Lock codes" in page and "failed_to_set_on_device" in page and f"{SRC}:R2" in page
    assert entry["integrations"][LOCK]["states"] == {
        "setting": 0,
        "set": 1,
        "failed": 1,
        "removing": 0,
        "removed": 0,
    }

    assert await admin.status(settings, LOCK, as_json=False) == 0
    out = capsys.readouterr().out
    assert "ACCESS CODES" in out and "lk" in out
    for pin in pins:  # the guests' secrets appear nowhere
        assert pin not in page and pin not in out
    logged = await db_rows(database_url, "SELECT string_agg(coalesce(last_error, ''), ' ') FROM access_codes")
    assert all(pin not in (logged[0][0] or "") for pin in pins)


async def test_seam_webhooks_settle_codes_without_polling(database_url: str, tmp_path: Path) -> None:
    """Svix-signed ``access_code.set_on_device`` events (the simulator sends them when its
    locks confirm) become targeted tasks that record the code as set, long before the
    hour-long poll would; a duplicate delivery changes nothing."""
    import anyio

    from syncd.connectors.webhooks import svix_new_secret
    from syncd.simulator.profile import WebhookHook
    from syncd.simulator.webhooks import DeliveryFaults, Subscription
    from tests.support import poll_until

    sim = seam_simulator()
    secret = svix_new_secret()
    async with SimulatorServer(sim) as server:
        doc = document(server, database_url, tmp_path)
        doc["web"]["enabled"] = True
        doc["integrations"][1]["webhook_secrets"] = [secret]
        doc["integrations"][1]["locks"]["settle_poll_s"] = 3600.0
        settings = settings_of(doc)
        await registered(database_url, tmp_path)
        async with anyio.create_task_group() as tg:
            daemon: Daemon = await tg.start(Daemon(settings).run)
            url = f"http://127.0.0.1:{daemon.web_port}/webhooks/seam/{LOCK}"
            sim.webhooks.subscribe(
                "seam-acct-1", Subscription(WebhookHook(url, (secret,)), DeliveryFaults(duplicate=1.0))
            )
            async with Store.open(database_url) as store:
                await write(store, stay("R1"), stay("R2", listing="L2"))

                async def all_set() -> bool:
                    return (await access.counts(store, [LOCK])).get(LOCK) == {"set": 2}

                with anyio.fail_after(20):
                    await poll_until(all_set)
            daemon.request_stop()
    settled = await db_rows(
        database_url,
        "SELECT count(*) FROM tasks WHERE kind = 'push' AND dedupe_key LIKE 'pushcode:%' AND state = 'done'",
    )
    assert settled[0][0] >= 2
    assert sim.webhooks.stats.delivered >= 4  # every event twice: the duplicate was a no-op


async def test_a_burst_to_one_lock_waits_its_per_device_budget_instead_of_drawing_429s(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five stays at one listing, a budget of two creations per second per device (Seam's
    is ten a minute; scaled down to keep the test short): the rest wait in the queue, told
    how long, without a request sent, and every stay gets its one code."""
    from syncd.connectors.seam import connector as seam

    monkeypatch.setattr(seam, "DEVICE_LIMITS", {"create": 2})
    monkeypatch.setattr(seam, "DEVICE_WINDOW_S", 1.0)
    sim = seam_simulator()
    workspace: SeamWorkspace = sim.account("seam-acct-1")
    async with SimulatorServer(sim) as server:
        settings = settings_of(document(server, database_url, tmp_path))
        await registered(database_url, tmp_path)
        async with Store.open(database_url) as store:
            await write(store, *(stay(f"R{n}") for n in range(5)))
            metrics = Metrics()
            for _ in range(10):
                await Daemon(settings, once=True, metrics=metrics).run()
                if (await access.counts(store, [LOCK])).get(LOCK) == {"set": 5}:
                    break
                await anyio.sleep(0.5)
            assert (await access.counts(store, [LOCK])).get(LOCK) == {"set": 5}
    assert len(workspace.codes) == 5 and max(workspace.creations_by_key.values()) == 1
    assert not [e for e in sim.request_log.entries() if e.status == 429]
    deferred = metrics.registry.get_sample_value(
        "syncd_push_total", {"partner": "seam", "action": "create", "outcome": "retried"}
    )
    assert deferred is not None and deferred >= 3
