"""The Guesty profile's reservations-v3 search over loopback HTTP: the documented sort
whitelist, 400s for an unsupported filter or sort, ``limit`` ≤ 100 (25 by default),
``pagination.hasMore``, and records without the embedded guest and money, over the same
dataset (and mutations) as the legacy endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.integration.simulator.test_guesty_http import CLIENT_ID, SECRET, _token

pytestmark = pytest.mark.anyio

SEARCH = "/guesty/v1/reservations-v3/search"


async def _walk(client: httpx.AsyncClient, auth: dict[str, str], sort: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while True:
        params: dict[str, str | int] = {"sort": sort, "skip": len(seen), "limit": 100}
        body = (await client.get(SEARCH, params=params, headers=auth)).json()
        seen.extend(body["results"])
        assert body["pagination"]["skip"] == params["skip"]
        if not body["pagination"]["hasMore"]:
            return seen


async def test_the_search_walks_every_reservation_as_v3_renders_it() -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=5, listings=150))
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        auth = await _token(client)
        first = (await client.get(SEARCH, headers=auth)).json()
        assert len(first["results"]) == 25 and first["pagination"]["hasMore"] is True

        walked = await _walk(client, auth, "_id")
        ids = [r["_id"] for r in walked]
        assert ids == sorted(ids) and len(ids) == 300
        legacy = {t.id: t.payload for t in account.truth_reservations()}
        assert set(ids) == set(legacy)
        for record in walked:
            assert "guest" not in record and "money" not in record
            expected = {k: v for k, v in legacy[record["_id"]].items() if k not in ("guest", "money")}
            assert record == expected
        truth = [
            orjson.loads(line) for line in sim.profile("guesty").version_truth(account, "reservations", "v3")
        ]
        assert {t["id"]: t["payload"] for t in truth} == {r["_id"]: r for r in walked}

        assert [r["_id"] for r in await _walk(client, auth, "-_id")] == ids[::-1]
        by_check_in = await _walk(client, auth, "checkIn")
        stamps = [(r["checkIn"], r["_id"]) for r in by_check_in]
        assert stamps == sorted(stamps)

        # Mutations show in the search: updated records change, inserted ones join at the end.
        summary = (
            await client.post(f"/_sim/guesty/{CLIENT_ID}/mutate", json={"count": 80, "seed": 2})
        ).json()
        after = {r["_id"]: r for r in await _walk(client, auth, "_id")}
        assert set(summary["reservations"]["inserted"]) <= set(after)
        assert list(after)[: len(ids)] == ids
        updated = [i for i in summary["reservations"]["updated"] if i in legacy]  # not just inserted
        assert updated
        for changed in updated:
            assert after[changed]["lastUpdatedAt"] > legacy[changed]["lastUpdatedAt"]

        one = await client.get(f"/guesty/v1/reservations-v3/{ids[0]}", headers=auth)
        assert one.status_code == 200 and one.json() == after[ids[0]]
        assert (await client.get("/guesty/v1/reservations-v3/" + "0" * 24, headers=auth)).status_code == 404


async def test_filters_narrow_the_search() -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=6, listings=100))
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        auth = await _token(client)
        params: dict[str, str | int] = {
            "filter[status][in]": "confirmed,canceled",
            "filter[checkIn][gte]": "2025-06-01",
            "limit": 100,
        }
        body = (await client.get(SEARCH, params=params, headers=auth)).json()
        assert body["results"], "the seed has such reservations"
        for record in body["results"]:
            assert record["status"] in ("confirmed", "canceled")
            assert record["checkInDateLocalized"] >= "2025-06-01"
        created = body["results"][0]["createdAt"]
        newer = (
            await client.get(SEARCH, params={"filter[createdAt][gte]": created, "limit": 100}, headers=auth)
        ).json()["results"]
        assert newer and all(r["createdAt"] >= created for r in newer)


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "lastUpdatedAt"},
        {"sort": "-updatedAt"},
        {"filter[updatedAt][gte]": "2025-01-01T00:00:00.000Z"},
        {"filter[lastUpdatedAt][gte]": "2025-01-01T00:00:00.000Z"},
        {"filter[status][eq]": "confirmed"},
        {"filter[checkIn][gte]": "not-a-date"},
        {"filters": '[{"field":"lastUpdatedAt","operator":"$gte","value":"2025-01-01T00:00:00.000Z"}]'},
        {"limit": 101},
        {"limit": 0},
        {"skip": -1},
    ],
)
async def test_an_unsupported_filter_sort_or_limit_is_a_400(params: dict[str, str | int]) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=7, listings=5))
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        auth = await _token(client)
        response = await client.get(SEARCH, params=params, headers=auth)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"]
