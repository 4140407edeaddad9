"""The Seam profile over real loopback HTTP: Bearer keys, RPC calls, asynchronous settling,
per-device limits, pagination, the idempotency switch and the counters tests read."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.seam.data import SeamWorkspace
from syncd.simulator.server import Simulator, SimulatorServer

pytestmark = pytest.mark.anyio
KEY = "seam_sim_key_1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def simulator(clock: Clock, **extra: Any) -> tuple[Simulator, SeamWorkspace]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), clock=clock)
    workspace = sim.profile("seam").dataset(1, 3, DatasetOptions(extra={"settle_s": 5.0, **extra}))
    sim.add_account("seam", "seam-acct-1", KEY, workspace)
    return sim, workspace


async def call(client: httpx.AsyncClient, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post(f"/seam{path}", json=body, headers={"Authorization": f"Bearer {KEY}", **headers})


def create(device: str = "device_1", name: str = "syncd:pms:R1") -> dict[str, Any]:
    return {
        "device_id": device,
        "name": name,
        "starts_at": "2025-03-10T14:00:00Z",
        "ends_at": "2025-03-13T10:00:00Z",
    }


async def test_codes_settle_after_the_delay_or_fail_on_a_failing_device() -> None:
    clock = Clock()
    sim, workspace = simulator(clock, failing_devices=["device_2"])
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        assert (await client.post("/seam/access_codes/get", json={})).status_code == 401
        made = (await call(client, "/access_codes/create", create())).json()["access_code"]
        bad = (await call(client, "/access_codes/create", create("device_2", "syncd:pms:R2"))).json()[
            "access_code"
        ]
        assert made["status"] == "setting" and made["starts_at"] == "2025-03-10T14:00:00.000Z"
        clock.now += 5.0
        got = (await call(client, "/access_codes/get", {"access_code_id": made["access_code_id"]})).json()
        assert got["access_code"]["status"] == "set"
        failed = (await call(client, "/access_codes/get", {"access_code_id": bad["access_code_id"]})).json()
        assert failed["access_code"]["errors"][0]["error_code"] == "failed_to_set_on_device"
        events = [orjson.loads(e)["event_type"] for e in workspace.take_events(clock.now)]
        assert sorted(events) == ["access_code.failed_to_set_on_device", "access_code.set_on_device"]
        gone = await call(client, "/access_codes/get", {"access_code_id": "nope"})
        assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found"


async def test_per_device_limits_answer_429_before_doing_anything() -> None:
    clock = Clock()
    sim, workspace = simulator(clock)
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        for n in range(10):
            assert (await call(client, "/access_codes/create", create(name=f"n{n}"))).status_code == 200
        refused = await call(client, "/access_codes/create", create(name="eleventh"))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert (
            await call(client, "/access_codes/create", create("device_2"))
        ).status_code == 200  # per device
        assert len(workspace.codes) == 11
        clock.now += 60.0
        assert (await call(client, "/access_codes/create", create(name="eleventh"))).status_code == 200


async def test_lists_page_by_cursor_and_the_idempotency_key_is_honoured_only_when_asked() -> None:
    clock = Clock()
    for honour, expected in ((True, 1), (False, 2)):
        sim, workspace = simulator(clock, honour_idempotency=honour)
        async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.base_url) as client:
            for _ in range(2):
                await call(client, "/access_codes/create", create(), **{"Idempotency-Key": "k1"})
            assert workspace.creations_by_key["k1"] == expected
            for n in range(5):
                clock.now += 60.0
                await call(client, "/access_codes/create", create(name=f"more{n}"))
            seen, cursor = [], None
            while True:
                body: dict[str, Any] = {"device_id": "device_1", "limit": 2}
                if cursor:
                    body["page_cursor"] = cursor
                page = (await call(client, "/access_codes/list", body)).json()
                seen += [c["access_code_id"] for c in page["access_codes"]]
                cursor = page["pagination"]["next_page_cursor"]
                if not page["pagination"]["has_next_page"]:
                    break
            assert sorted(seen) == sorted(workspace.codes) and len(seen) == expected + 5
            described = sim.profile("seam").describe(workspace)
            assert described["max_creations_per_key"] == expected
            assert described["codes_per_device"] == {"device_1": expected + 5}
            bad = await call(
                client, "/access_codes/list", {"device_id": "device_1", "page_cursor": "garbage"}
            )
            assert bad.status_code == 400
