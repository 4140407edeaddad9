"""The Guesty profile over real loopback HTTP: auth, pagination, limits, the request log."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import orjson
import pytest

from syncd.simulator import faults, limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer

pytestmark = pytest.mark.anyio

CLIENT_ID, SECRET = "guesty-acct-1", "sim-secret-1"
T0 = "2025-01-01T00:00:00.000Z"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def running(sim: Simulator) -> AsyncIterator[tuple[SimulatorServer, httpx.AsyncClient]]:
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        yield server, client


def _form(client_id: str = CLIENT_ID, secret: str = SECRET) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": "open-api",
        "client_id": client_id,
        "client_secret": secret,
    }


async def _token(
    client: httpx.AsyncClient, client_id: str = CLIENT_ID, secret: str = SECRET
) -> dict[str, str]:
    response = await client.post("/guesty/oauth2/token", data=_form(client_id, secret))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _gte(value: str) -> str:
    return orjson.dumps([{"field": "lastUpdatedAt", "operator": "$gte", "value": value}]).decode()


async def test_token_flow_cap_and_401s() -> None:
    wall = FakeClock(1_800_000_000.0)
    sim = Simulator(token_ttl_s=600, wall_clock=wall)
    sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=1, listings=10))
    async with running(sim) as (_, client):
        first = await client.post("/guesty/oauth2/token", data=_form())
        body = first.json()
        assert set(body) == {"token_type", "access_token", "expires_in", "scope"}
        assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 600, "open-api")
        for _ in range(4):
            assert (await client.post("/guesty/oauth2/token", data=_form())).status_code == 200
        sixth = await client.post("/guesty/oauth2/token", data=_form())
        assert sixth.status_code == 429
        assert sixth.headers["Retry-After"] == "3600"

        wrong = await client.post("/guesty/oauth2/token", data=_form(secret="nope"))
        assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
        unknown = await client.post("/guesty/oauth2/token", data=_form(client_id="who"))
        assert unknown.status_code == 401
        bad_grant = await client.post("/guesty/oauth2/token", data={**_form(), "grant_type": "password"})
        assert bad_grant.status_code == 400
        as_json = await client.post("/guesty/oauth2/token", json=_form())
        assert as_json.status_code == 400

        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert (await client.get("/guesty/v1/listings", headers=headers)).status_code == 200
        assert (await client.get("/guesty/v1/listings")).status_code == 401
        assert (
            await client.get("/guesty/v1/listings", headers={"Authorization": "Bearer forged"})
        ).status_code == 401
        wall.now += 600  # the token's TTL
        expired = await client.get("/guesty/v1/listings", headers=headers)
        assert expired.status_code == 401
        assert "X-RateLimit-Limit-Second" not in expired.headers


async def test_pagination_by_last_updated_returns_every_listing_once() -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=3, listings=1000))
    async with running(sim) as (_, client):
        auth = await _token(client)
        seen: list[dict[str, Any]] = []
        skip = 0
        while True:
            params: dict[str, str | int] = {"limit": 100, "skip": skip, "sort": "lastUpdatedAt"}
            params["filters"] = _gte(T0)
            page = (await client.get("/guesty/v1/listings", params=params, headers=auth)).json()
            assert page["count"] == 1000 and page["limit"] == 100 and page["skip"] == skip
            seen.extend(page["results"])
            if len(page["results"]) < 100:
                break
            skip += 100
        ids = [x["_id"] for x in seen]
        assert len(ids) == len(set(ids)) == 1000
        assert set(ids) == {t.id for t in account.truth_listings()}
        stamps = [(x["lastUpdatedAt"], x["_id"]) for x in seen]
        assert stamps == sorted(stamps)

        # After mutations, an incremental pass from the newest stamp sees exactly the changes.
        newest = seen[-1]["lastUpdatedAt"]
        summary = (
            await client.post(f"/_sim/guesty/{CLIENT_ID}/mutate", json={"count": 60, "seed": 4})
        ).json()
        params = {"limit": 100, "sort": "lastUpdatedAt", "filters": _gte(newest)}  # since the last page
        changed = (await client.get("/guesty/v1/listings", params=params, headers=auth)).json()["results"]
        expected = set(summary["listings"]["updated"]) | set(summary["listings"]["inserted"])
        expected -= set(summary["listings"]["deleted"])
        got = {x["_id"] for x in changed if x["lastUpdatedAt"] > newest}
        assert got == expected
        for gone in summary["listings"]["deleted"]:
            assert (await client.get(f"/guesty/v1/listings/{gone}", headers=auth)).status_code == 404


async def test_rate_limit_headers_and_429_after_fifteen_in_a_second() -> None:
    clock = FakeClock(50.0)
    sim = Simulator(clock=clock)
    sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=1, listings=10))
    async with running(sim) as (_, client):
        auth = await _token(client)
        remaining = []
        for _ in range(15):
            response = await client.get("/guesty/v1/listings", params={"limit": 1}, headers=auth)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit-Second"] == "15"
            assert response.headers["X-RateLimit-Limit-Minute"] == "120"
            assert response.headers["X-RateLimit-Limit-Hour"] == "5000"
            remaining.append(int(response.headers["X-RateLimit-Remaining-Second"]))
        assert remaining == list(range(14, -1, -1))
        refused = await client.get("/guesty/v1/listings", headers=auth)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["X-RateLimit-Remaining-Second"] == "0"
        assert refused.json()["error"]["code"] == "TOO_MANY_REQUESTS"
        clock.now += 1.0
        again = await client.get("/guesty/v1/listings", headers=auth)
        assert again.status_code == 200
        # 15 taken (the refusal took nothing), 2 leaked in the second that passed, 1 taken now.
        assert again.headers["X-RateLimit-Remaining-Minute"] == str(120 - 15 + 2 - 1)


async def test_limits_change_at_runtime_through_the_control_plane() -> None:
    clock = FakeClock(0.0)
    sim = Simulator(clock=clock)
    sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=1, listings=10))
    async with running(sim) as (_, client):
        auth = await _token(client)
        halved = await client.post("/_sim/limits", json={"factor": 0.5, "advertise_documented": True})
        assert halved.json() == {"enabled": True, "factor": 0.5, "advertise_documented": True}
        statuses = [(await client.get("/guesty/v1/listings", headers=auth)).status_code for _ in range(8)]
        assert statuses == [200] * 7 + [429]
        clock.now += 10
        response = await client.get("/guesty/v1/listings", headers=auth)
        assert response.headers["X-RateLimit-Limit-Second"] == "15"  # the documented limit, not 7
        await client.post("/_sim/limits", json={"enabled": False})
        statuses = [(await client.get("/guesty/v1/listings", headers=auth)).status_code for _ in range(30)]
        assert set(statuses) == {200}
        assert (await client.post("/_sim/limits", json={"factor": "big"})).status_code == 400


async def test_accounts_have_their_own_data_and_buckets() -> None:
    clock = FakeClock(0.0)
    sim = Simulator(clock=clock)
    a = sim.add_account("guesty", "a", "sa", GuestyAccount(seed=1, listings=20))
    b = sim.add_account("guesty", "b", "sb", GuestyAccount(seed=2, listings=30))
    async with running(sim) as (_, client):
        auth_a, auth_b = await _token(client, "a", "sa"), await _token(client, "b", "sb")
        page_a = (await client.get("/guesty/v1/listings", params={"limit": 100}, headers=auth_a)).json()
        page_b = (await client.get("/guesty/v1/listings", params={"limit": 100}, headers=auth_b)).json()
        assert [x["_id"] for x in page_a["results"]] == [a.listing_id(i) for i in range(20)]
        assert page_b["count"] == 30 and page_b["results"][0]["_id"] == b.listing_id(0)
        other = await client.get(f"/guesty/v1/listings/{b.listing_id(0)}", headers=auth_a)
        assert other.status_code == 404
        for _ in range(14):
            await client.get("/guesty/v1/listings", headers=auth_a)
        assert (await client.get("/guesty/v1/listings", headers=auth_a)).status_code == 429
        assert (await client.get("/guesty/v1/listings", headers=auth_b)).status_code == 200


async def test_request_log_counts_equal_the_requests_made() -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=1, listings=50))
    async with running(sim) as (_, client):
        auth = await _token(client)
        checkpoint = _gte("2025-01-01T00:00:03.000Z")
        await client.get(
            "/guesty/v1/listings",
            params={"limit": 10, "sort": "lastUpdatedAt", "filters": checkpoint},
            headers=auth,
        )
        for skip in (10, 20):
            await client.get("/guesty/v1/listings", params={"limit": 10, "skip": skip}, headers=auth)
        await client.get(f"/guesty/v1/listings/{account.listing_id(3)}", headers=auth)
        await client.get("/guesty/v1/listings/000000000000000000000000", headers=auth)
        await client.get("/guesty/v1/reservations", params={"limit": 5}, headers=auth)
        await client.get("/guesty/v1/listings", params={"limit": 500}, headers=auth)
        await client.get("/guesty/v1/listings")
        await client.get("/guesty/v1/nowhere", headers=auth)
        await client.get("/_sim/health")  # control calls are not partner traffic

        body = (await client.get("/_sim/requests", params={"last": 100})).json()
        counters = {(c["account"], c["method"], c["path"], c["status"]): c["count"] for c in body["counters"]}
        assert counters == {
            (CLIENT_ID, "POST", "/guesty/oauth2/token", 200): 1,
            (CLIENT_ID, "GET", "/guesty/v1/listings", 200): 3,
            (CLIENT_ID, "GET", "/guesty/v1/listings", 400): 1,
            (CLIENT_ID, "GET", "/guesty/v1/listings/{id}", 200): 1,
            (CLIENT_ID, "GET", "/guesty/v1/listings/{id}", 404): 1,
            (CLIENT_ID, "GET", "/guesty/v1/reservations", 200): 1,
            (None, "GET", "/guesty/v1/listings", 401): 1,
            (None, "GET", "/guesty/v1/nowhere", 404): 1,
        }
        assert len(body["entries"]) == 10
        first_listing = sim.request_log.entries(path="/guesty/v1/listings")[0]
        assert first_listing.param("filters") == checkpoint
        assert first_listing.param("sort") == "lastUpdatedAt"
        assert sim.request_log.count(path="/guesty/v1/listings") == 5

        assert (await client.post("/_sim/requests/reset")).status_code == 200
        assert sim.request_log.count() == 0


async def test_truth_streams_ndjson_and_matches_the_api() -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account(
        "guesty", CLIENT_ID, SECRET, GuestyAccount(seed=5, listings=300, malformed_listings=frozenset({7}))
    )
    async with running(sim) as (_, client):
        await client.post(f"/_sim/guesty/{CLIENT_ID}/mutate", json={"count": 40, "seed": 1})
        lines = []
        async with client.stream("GET", f"/_sim/guesty/{CLIENT_ID}/truth") as response:
            assert response.headers["content-type"].startswith("application/x-ndjson")
            async for line in response.aiter_lines():
                if line:
                    lines.append(orjson.loads(line))
        listings = [x for x in lines if x["kind"] == "listing"]
        reservations = [x for x in lines if x["kind"] == "reservation"]
        assert len(listings) == account.live_listing_count() - 1  # the malformed one is not truth
        assert len(reservations) == account.reservation_count()
        assert any(x["version"] > 1 for x in listings)
        auth = await _token(client)
        sample = listings[123]
        served = await client.get(f"/guesty/v1/listings/{sample['id']}", headers=auth)
        assert served.json() == sample["payload"]
        only = (await client.get(f"/_sim/guesty/{CLIENT_ID}/truth", params={"kind": "reservation"})).text
        assert {orjson.loads(x)["kind"] for x in only.splitlines()} == {"reservation"}
        assert (await client.get("/_sim/guesty/nobody/truth")).status_code == 404
        accounts = (await client.get("/_sim/accounts")).json()
        assert accounts[0]["partner"] == "guesty"
        assert accounts[0]["id"] == CLIENT_ID and accounts[0]["secret"] == SECRET


async def test_queries_validation_projection_and_reservations() -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=6, listings=40))
    async with running(sim) as (_, client):
        auth = await _token(client)
        too_big = await client.get("/guesty/v1/listings", params={"limit": 101}, headers=auth)
        assert too_big.status_code == 400 and "limit" in too_big.json()["error"]["message"]
        bad = await client.get("/guesty/v1/listings", params={"filters": "[{nope"}, headers=auth)
        assert bad.status_code == 400
        default = (await client.get("/guesty/v1/listings", headers=auth)).json()
        assert (len(default["results"]), default["limit"]) == (25, 25)
        projected = (
            await client.get("/guesty/v1/listings", params={"fields": "title pictures"}, headers=auth)
        ).json()
        assert all(set(x) == {"_id", "title", "pictures"} for x in projected["results"])
        one = await client.get(
            f"/guesty/v1/listings/{account.listing_id(2)}", params={"fields": "pictures"}, headers=auth
        )
        assert set(one.json()) == {"_id", "pictures"}
        between = orjson.dumps(
            [
                {
                    "field": "lastUpdatedAt",
                    "operator": "$between",
                    "from": "2025-01-01T00:00:02.000Z",
                    "to": "2025-01-01T00:00:03.999Z",
                }
            ]
        )
        res = (
            await client.get(
                "/guesty/v1/reservations", params={"filters": between.decode(), "sort": "-_id"}, headers=auth
            )
        ).json()
        assert res["count"] == 10  # two tie groups of 5
        assert [x["_id"] for x in res["results"]] == [account.reservation_id(j) for j in range(19, 9, -1)]
        window = {x["lastUpdatedAt"] for x in res["results"]}
        assert window == {"2025-01-01T00:00:02.000Z", "2025-01-01T00:00:03.000Z"}


async def test_concurrency_cap_and_latency() -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(factor=10), latency_ms=(300, 300))
    sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=1, listings=5))
    async with running(sim) as (_, client):
        auth = await _token(client)
        statuses: list[int] = []

        async def one() -> None:
            response = await client.get("/guesty/v1/listings", headers=auth)
            assert "X-RateLimit-Remaining-Second" in response.headers
            statuses.append(response.status_code)

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
        assert time.perf_counter() - started >= 0.3
        assert sorted(statuses) == [200] * 15 + [429] * 5


async def test_fault_plan_is_consulted_per_request() -> None:
    class FailListings:
        def __init__(self) -> None:
            self.seen: list[faults.FaultContext] = []

        def decide(self, ctx: faults.FaultContext) -> faults.Fault | None:
            self.seen.append(ctx)
            return faults.Fault(status=503) if ctx.path == "/v1/listings" else None

    plan = FailListings()
    sim = Simulator(faults=plan)
    sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=1, listings=5))
    async with running(sim) as (_, client):
        auth = await _token(client)
        assert (await client.get("/guesty/v1/listings", headers=auth)).status_code == 503
        assert (await client.get("/guesty/v1/reservations", headers=auth)).status_code == 200
    # A plan sees route templates below the partner's prefix, and the partner by name.
    assert [c.path for c in plan.seen] == ["/oauth2/token", "/v1/listings", "/v1/reservations"]
    assert [(c.partner, c.role) for c in plan.seen] == [
        ("guesty", "token"),
        ("guesty", "api"),
        ("guesty", "api"),
    ]
    assert plan.seen[1].account == CLIENT_ID
    assert sim.request_log.count(path="/guesty/v1/listings", status=503) == 1
