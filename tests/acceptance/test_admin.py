"""The operator's surface: /admin/* over real HTTP on a running daemon (token off, wrong,
right; each route against the CLI's answer), and the CLI from a config that names only
the database of a daemon running in another process."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from syncd.app import Daemon
from syncd.observability import logging as syncd_logging
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.postgres import Store
from tests.support import db_rows, guesty_config, open_daemon, poll_until, settings_of, toml_of, write_config

pytestmark = pytest.mark.anyio
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")
TOKEN = "t0ken-" + "a1b2c3d4" * 6
WRONG = "t0ken-" + "a1b2c3d4" * 5 + "a1b2c3d5"  # same length, last character differs


async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    proc = await anyio.run_process(
        [sys.executable, "-m", "syncd", *args, "--config", str(config)], check=False
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


async def task_count(database_url: str) -> int:
    return int((await db_rows(database_url, "SELECT count(*) FROM tasks"))[0][0])


async def synced(database_url: str, resources: int = 2) -> None:
    async def done() -> bool:
        rows = await db_rows(
            database_url, "SELECT count(*) FROM sync_state WHERE last_success_at IS NOT NULL"
        )
        return bool(rows[0][0] == resources)

    with anyio.fail_after(60):
        await poll_until(done)


async def test_without_a_token_every_admin_route_is_a_404(database_url: str, tmp_path: Path) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=3, listings=20))
    async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
        document = guesty_config(
            server, database_url, [ACCOUNT], state_dir=tmp_path, web=True, interval_s=3600
        )
        document["web"]["admin_token"] = "${SYNCD_TEST_ADMIN_TOKEN:-}"  # unset: no token
        daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)
        await synced(database_url)
        before = await task_count(database_url)
        answers = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web_port}") as client:
            for auth in ({}, {"authorization": f"Bearer {TOKEN}"}):
                answers += [
                    await client.post("/admin/sync-now", json={"integration": "acme"}, headers=auth),
                    await client.get("/admin/dlq", headers=auth),
                    await client.post("/admin/dlq/replay", json={"integration": "acme"}, headers=auth),
                    await client.get("/admin/tasks", headers=auth),
                    await client.get("/admin/", headers=auth),
                ]
            health = await client.get("/healthz")
        daemon.request_stop()
    assert [a.status_code for a in answers] == [404] * 10
    assert health.status_code == 200  # the rest of the surface is there
    assert await task_count(database_url) == before


async def test_admin_routes_mirror_the_cli_behind_a_bearer_token(database_url: str, tmp_path: Path) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account(
        "guesty",
        ACCOUNT[1],
        ACCOUNT[2],
        GuestyAccount(seed=7, listings=300, malformed_listings=frozenset({3, 250})),
    )
    repaired, _still_bad = account.malformed_listing_ids()
    stream = io.StringIO()
    syncd_logging.configure("info", "json", stream=stream)
    try:
        async with SimulatorServer(sim) as server, anyio.create_task_group() as tg:
            document = guesty_config(
                server, database_url, [ACCOUNT], state_dir=tmp_path, web=True, interval_s=3600
            )
            document["web"]["admin_token"] = TOKEN
            config = write_config(document, tmp_path)
            daemon: Daemon = await tg.start(Daemon(settings_of(document)).run)
            await synced(database_url)
            base = f"http://127.0.0.1:{daemon.web_port}"
            async with (
                httpx.AsyncClient(base_url=base, timeout=30) as anon,
                httpx.AsyncClient(
                    base_url=base, timeout=30, headers={"authorization": f"Bearer {TOKEN}"}
                ) as client,
            ):
                await refusals(anon, client, database_url)
                await sync_now_runs_at_user_priority(client, account, database_url)
                await dead_letters_as_the_cli_lists_and_replays_them(
                    client, config, account, repaired, database_url
                )
                await tasks_as_the_cli_lists_them(client, config)
            daemon.request_stop()
    finally:
        syncd_logging.configure("info", "console")
    text = stream.getvalue()
    assert '"event": "admin_unauthorized"' in text or '"event":"admin_unauthorized"' in text
    assert TOKEN not in text and WRONG not in text  # neither the token nor a guess is logged


async def refusals(anon: httpx.AsyncClient, client: httpx.AsyncClient, database_url: str) -> None:
    """Wrong or missing credentials: 401 with a Bearer challenge; bad input: 400 or 404;
    nothing is queued by any of them."""
    before = await task_count(database_url)
    body = {"integration": "acme"}
    for headers in (
        {},
        {"authorization": f"Bearer {WRONG}"},
        {"authorization": f"Bearer {TOKEN[:-1]}"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": TOKEN},
    ):
        for response in (
            await anon.post("/admin/sync-now", json=body, headers=headers),
            await anon.get("/admin/tasks", headers=headers),
            await anon.get("/admin/dlq", headers=headers),
            await anon.post("/admin/dlq/replay", json=body, headers=headers),
        ):
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
    bad = [
        await client.post("/admin/sync-now", content=b"{not json"),
        await client.post("/admin/sync-now", json={}),
        await client.post("/admin/sync-now", json={"integration": "acme", "priority": 0}),
        await client.post("/admin/sync-now", json=["acme"]),
        await client.get("/admin/tasks", params={"state": "sleeping"}),
        await client.get("/admin/tasks", params={"limit": "0"}),
        await client.get("/admin/dlq", params={"limit": "lots"}),
        await client.post("/admin/dlq/replay", json={"integration": "acme", "limit": -1}),
    ]
    assert [r.status_code for r in bad] == [400] * len(bad), [r.text for r in bad]
    assert all(r.json()["problems"] for r in bad)
    unknown = [
        await client.post("/admin/sync-now", json={"integration": "nobody"}),
        await client.post("/admin/sync-now", json={"integration": "acme", "resource": "photos"}),
        await client.get("/admin/tasks", params={"integration": "nobody"}),
        await client.get("/admin/dlq", params={"integration": "nobody"}),
        await client.post("/admin/dlq/replay", json={"integration": "nobody"}),
    ]
    assert [r.status_code for r in unknown] == [404] * len(unknown)
    assert unknown[0].json() == {"error": "unknown integration 'nobody'"}
    assert await task_count(database_url) == before


async def sync_now_runs_at_user_priority(
    client: httpx.AsyncClient, account: GuestyAccount, database_url: str
) -> None:
    """Nothing is due for an hour: only the queued task can bring the partner's new listings."""
    inserted = account.mutate(40, seed=5).listings_inserted
    assert inserted
    before = await db_rows(database_url, "SELECT max(id) FROM tasks")
    response = await client.post("/admin/sync-now", json={"integration": "acme", "resource": "properties"})
    assert response.status_code == 202
    assert response.json() == {"integration": "acme", "queued": ["properties"], "priority": "user"}
    queued = await db_rows(
        database_url, "SELECT kind, priority, resource FROM tasks WHERE id > $1", before[0][0]
    )
    assert [tuple(r) for r in queued] == [("sync", 0, "properties")]

    async def rows_appear() -> bool:
        found = await db_rows(
            database_url,
            "SELECT count(*) FROM properties WHERE external_id = ANY($1::text[])",
            list(inserted),
        )
        return bool(found[0][0] == len(inserted))

    with anyio.fail_after(30):
        await poll_until(rows_appear)

    async def finished() -> bool:
        state = await db_rows(database_url, "SELECT state FROM tasks WHERE id > $1", before[0][0])
        return [r[0] for r in state] == ["done"]

    with anyio.fail_after(30):
        await poll_until(finished)


async def dead_letters_as_the_cli_lists_and_replays_them(
    client: httpx.AsyncClient, config: Path, account: GuestyAccount, repaired: str, database_url: str
) -> None:
    response = await client.get("/admin/dlq", params={"integration": "acme"})
    code, out, err = await cli(config, "dlq", "list", "--integration", "acme", "--json")
    assert code == 0, err
    assert response.status_code == 200 and response.json()["dead_letters"] == lines(out)
    assert len(lines(out)) == 2 and "payload" not in lines(out)[0]
    with_payload = await client.get("/admin/dlq", params={"payload": "true", "limit": "1"})
    assert (
        len(with_payload.json()["dead_letters"]) == 1 and "payload" in with_payload.json()["dead_letters"][0]
    )

    # Nothing repaired yet: the CLI's replay and the daemon's give the same report.
    code, out, err = await cli(config, "dlq", "replay", "--integration", "acme", "--json")
    assert code == 1, err  # still bad
    response = await client.post("/admin/dlq/replay", json={"integration": "acme"})
    assert response.status_code == 200 and response.json()["results"] == lines(out)
    assert lines(out) == [
        {"integration": "acme", "resource": "properties", "busy": False,
         "fixed": 0, "still_bad": 2, "gone": 0, "unidentified": 0},
    ]  # fmt: skip

    # A sync holds the records' lock: 409, and nothing is written.
    async with Store.open(database_url, min_size=1, max_size=2) as store:
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            busy = await client.post(
                "/admin/dlq/replay", json={"integration": "acme", "resource": "properties"}
            )
    assert busy.status_code == 409
    assert busy.json()["results"][0]["busy"] is True

    # The partner repairs one record: the daemon's own connector fetches and stores it.
    assert account.repair_listing(repaired)
    response = await client.post(
        "/admin/dlq/replay", json={"integration": "acme", "resource": "properties", "ids": [repaired]}
    )
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"integration": "acme", "resource": "properties", "busy": False,
         "fixed": 1, "still_bad": 0, "gone": 0, "unidentified": 0},
    ]  # fmt: skip
    stored = await db_rows(database_url, "SELECT 1 FROM properties WHERE external_id = $1", repaired)
    assert len(stored) == 1


async def tasks_as_the_cli_lists_them(client: httpx.AsyncClient, config: Path) -> None:
    response = await client.get("/admin/tasks", params={"integration": "acme", "limit": "50"})
    code, out, err = await cli(config, "tasks", "--integration", "acme", "--limit", "50", "--json")
    assert code == 0, err
    assert response.status_code == 200 and response.json()["tasks"] == lines(out)
    tasks = lines(out)
    user = [t for t in tasks if t["priority"] == 0]
    assert [(t["kind"], t["resource"], t["state"], t["priority_name"]) for t in user] == [
        ("sync", "properties", "done", "user")
    ]
    # The start-up syncs were scheduled ones.
    assert {(t["resource"], t["priority_name"]) for t in tasks if t["priority"] != 0} == {
        ("properties", "scheduled"),
        ("reservations", "scheduled"),
    }
    done = await client.get("/admin/tasks", params={"state": "done", "limit": "1"})
    assert [t["state"] for t in done.json()["tasks"]] == ["done"]


async def test_the_cli_needs_only_the_database_of_a_running_daemon(database_url: str, tmp_path: Path) -> None:
    """An operator's machine has no partner credentials: a config with just the database URL
    lists, queues and reads tasks of the integrations a daemon (another process) registered."""
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account(
        "guesty",
        ACCOUNT[1],
        ACCOUNT[2],
        GuestyAccount(seed=7, listings=60, malformed_listings=frozenset({5})),
    )
    operator = tmp_path / "operator.toml"
    operator.write_text(toml_of({"database": {"url": database_url}}))
    async with SimulatorServer(sim) as server:
        document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path, interval_s=3600)
        proc = await open_daemon(write_config(document, tmp_path))
        try:
            await synced(database_url)
            code, out, err = await cli(operator, "status", "--json")
            assert code == 0, err
            assert {(r["integration_id"], r["resource"], r["last_outcome"]) for r in lines(out)} == {
                ("acme", "properties", "ok"),
                ("acme", "reservations", "ok"),
            }
            code, out, err = await cli(operator, "dlq", "list", "--json")
            assert code == 0, err
            assert [r["external_id"] for r in lines(out)] == account.malformed_listing_ids()

            inserted = account.mutate(30, seed=9).listings_inserted
            code, out, err = await cli(
                operator, "sync-now", "--integration", "acme", "--resource", "properties"
            )
            assert code == 0, err
            assert out.startswith("acme: queued a sync of properties at priority user")

            async def done() -> bool:
                code, out, _ = await cli(
                    operator, "tasks", "--integration", "acme", "--state", "done", "--json"
                )
                return code == 0 and any(t["priority_name"] == "user" for t in lines(out))

            with anyio.fail_after(30):
                await poll_until(done)
            stored = await db_rows(
                database_url,
                "SELECT count(*) FROM properties WHERE external_id = ANY($1::text[])",
                list(inserted),
            )
            assert stored[0][0] == len(inserted)

            code, out, err = await cli(operator, "tasks")
            assert code == 0, err
            assert out.splitlines()[0].split()[:6] == [
                "ID",
                "INTEGRATION_ID",
                "RESOURCE",
                "KIND",
                "PRIORITY_NAME",
                "STATE",
            ]

            # Unknown names and bad options: exit 2, nothing queued.
            before = await task_count(database_url)
            code, _, err = await cli(operator, "sync-now", "--integration", "nobody")
            assert code == 2 and "unknown integration 'nobody' (known: acme)" in err
            code, _, err = await cli(operator, "tasks", "--state", "sleeping")
            assert code == 2 and "invalid choice" in err
            code, _, err = await cli(operator, "tasks", "--limit", "0")
            assert code == 2 and "positive integer" in err
            # Replay calls the partner: that needs credentials this config does not have.
            code, _, err = await cli(operator, "dlq", "replay", "--integration", "acme")
            assert code == 2 and "POST /admin/dlq/replay" in err
            assert await task_count(database_url) == before
        finally:
            proc.terminate()
            with anyio.fail_after(30):
                await proc.wait()
