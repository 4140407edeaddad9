"""A partner's fake is a profile: this one, written here, gets the whole gateway unchanged.

"Widgets" authenticates with an API-key header, answers auth failures as HTTP 200
``{"success": false}``, wraps errors in its own envelope and advertises no rate-limit
headers. Faults, limits, the request log and the control plane must all work for it
exactly as for the built-in profiles, served on the same port beside them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from syncd.simulator import limits
from syncd.simulator.fault_spec import FaultSpec, Rule, StatusParams
from syncd.simulator.profile import Account, Api, DatasetOptions, Endpoint, Profile, discover
from syncd.simulator.server import Simulator, SimulatorServer

pytestmark = pytest.mark.anyio

KEY, OTHER_KEY = "key-1", "key-2"


class Widgets(Profile[list[str]]):
    name = "widgets"
    tiers = (limits.Tier("Minute", 5, 60.0),)
    max_concurrent = 2

    def endpoints(self) -> Sequence[Endpoint[list[str]]]:
        return [Api("/api/items", self.items)]

    def authenticate(
        self, request: Request, accounts: Mapping[str, Account[list[str]]]
    ) -> Account[list[str]] | None:
        key = request.headers.get("x-api-key")
        return next((a for a in accounts.values() if a.secret == key), None)

    def unauthorized(self, request: Request) -> Response:
        return Response(b'{"success":false,"message":"invalid api key"}', 200, media_type="application/json")

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        body = orjson.dumps({"success": False, "status": status, "message": message})
        return Response(body, status, headers=dict(headers or {}), media_type="application/json")

    def rate_headers(self, decision: limits.Decision) -> dict[str, str]:
        return {}

    async def items(self, request: Request, account: Account[list[str]]) -> Response:
        return Response(orjson.dumps({"success": True, "data": account.data}), media_type="application/json")

    def dataset(self, seed: int, size: int, options: DatasetOptions) -> list[str]:
        return [f"w{seed}-{i}" for i in range(size)]

    def describe(self, data: list[str]) -> dict[str, object]:
        return {"items": len(data)}

    def mutate(self, data: list[str], count: int, seed: int) -> dict[str, object]:
        data.extend(f"new{seed}-{i}" for i in range(count))
        return {"inserted": count}

    def truth(self, data: list[str], kind: str | None) -> Iterable[bytes]:
        return (orjson.dumps({"id": item}) + b"\n" for item in data)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sim(clock: FakeClock) -> Simulator:
    sim = Simulator(clock=clock, profiles=[*discover().values(), Widgets])
    sim.add_accounts("widgets", 2, seed=1, size=3)
    sim.accounts["widgets-acct-1"].secret = KEY
    sim.accounts["widgets-acct-2"].secret = OTHER_KEY
    return sim


@asynccontextmanager
async def running(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.base_url) as client:
        yield client


def _items(client: httpx.AsyncClient, key: str = KEY) -> Any:
    return client.get("/widgets/api/items", headers={"X-API-Key": key})


async def test_auth_and_limits_follow_the_profile() -> None:
    clock = FakeClock()
    sim = _sim(clock)
    async with running(sim) as client:
        refused = await _items(client, "wrong")
        assert (refused.status_code, refused.json()["success"]) == (200, False)
        answers = [await _items(client) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert answers[0].json() == {"success": True, "data": ["w1-0", "w1-1", "w1-2"]}
        limited = answers[-1]
        assert limited.json() == {"success": False, "status": 429, "message": "Rate limit exceeded"}
        assert int(limited.headers["Retry-After"]) >= 1
        assert not any(h.lower().startswith("x-ratelimit") for h in limited.headers)
        assert (await _items(client, OTHER_KEY)).status_code == 200  # buckets are per account
        clock.now += 60
        assert (await _items(client)).status_code == 200
    assert sim.request_log.count(path="/widgets/api/items", account="widgets-acct-1", status=429) == 1
    unknown = [e for e in sim.request_log.entries(path="/widgets/api/items") if e.account is None]
    assert [e.status for e in unknown] == [200]  # the refusal is the profile's HTTP 200


async def test_faults_address_the_partner_by_name_and_use_its_envelope() -> None:
    sim = _sim(FakeClock())
    others = Rule("status", partners=("not-widgets",), params=StatusParams((500,)))
    mine = Rule("status", partners=("widgets",), paths=("@api",), to_request=1, params=StatusParams((503,)))
    sim.set_faults(FaultSpec((others, mine)))
    async with running(sim) as client:
        failed = await _items(client)
        assert failed.status_code == 503
        assert failed.json() == {"success": False, "status": 503, "message": "Simulated fault"}
        assert (await _items(client)).status_code == 200
    assert sim.request_log.count_faults("status", path="/widgets/api/items") == 1


async def test_the_control_plane_drives_any_profile() -> None:
    sim = _sim(FakeClock())
    async with running(sim) as client:
        listed = (await client.get("/_sim/accounts")).json()
        mine = [a for a in listed if a["partner"] == "widgets"]
        assert mine == [
            {"partner": "widgets", "id": "widgets-acct-1", "secret": KEY, "items": 3},
            {"partner": "widgets", "id": "widgets-acct-2", "secret": OTHER_KEY, "items": 3},
        ]
        mutated = await client.post("/_sim/widgets/widgets-acct-1/mutate", json={"count": 2, "seed": 9})
        assert mutated.json() == {"inserted": 2}
        assert (await _items(client)).json()["data"][-2:] == ["new9-0", "new9-1"]
        truth = (await client.get("/_sim/widgets/widgets-acct-1/truth")).text.splitlines()
        assert len(truth) == 5
        assert (await client.get("/_sim/guesty/widgets-acct-1/truth")).status_code == 404
        health = (await client.get("/_sim/health")).json()
        assert "widgets" in health["partners"] and "guesty" in health["partners"]
