"""Injected faults as a real httpx client experiences them over loopback HTTP."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
import orjson
import pytest

from syncd.simulator import fault_presets, limits
from syncd.simulator.fault_spec import (
    CutParams,
    FaultSpec,
    HangParams,
    LimitParams,
    OutageParams,
    RateLimitParams,
    Rule,
    SlowParams,
    StatusParams,
)
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer

pytestmark = pytest.mark.anyio

CLIENT_ID, SECRET = "guesty-acct-1", "sim-secret-1"
OTHER_ID, OTHER_SECRET = "guesty-acct-2", "sim-secret-2"
LISTINGS = "/v1/listings"  # fault rules name routes below the partner's prefix
URL_LISTINGS = "/guesty" + LISTINGS  # clients and the request log see the full path


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _sim(*rules: Rule, clock: FakeClock | None = None, seed: int = 1) -> Simulator:
    sim = Simulator(
        limit_settings=limits.LimitSettings(enabled=False),
        max_tokens_per_day=None,
        clock=clock if clock is not None else time.monotonic,
    )
    sim.add_account("guesty", CLIENT_ID, SECRET, GuestyAccount(seed=1, listings=150))
    sim.add_account("guesty", OTHER_ID, OTHER_SECRET, GuestyAccount(seed=2, listings=10))
    if rules:
        sim.set_faults(FaultSpec(rules, seed))
    return sim


@asynccontextmanager
async def running(
    sim: Simulator, read_timeout_s: float = 5.0
) -> AsyncIterator[tuple[SimulatorServer, httpx.AsyncClient]]:
    async with (
        SimulatorServer(sim) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=read_timeout_s) as client,
    ):
        yield server, client


async def _token(
    client: httpx.AsyncClient, client_id: str = CLIENT_ID, secret: str = SECRET
) -> httpx.Response:
    form = {"grant_type": "client_credentials", "scope": "open-api", "client_id": client_id}
    return await client.post("/guesty/oauth2/token", data=form | {"client_secret": secret})


async def _auth(
    client: httpx.AsyncClient, client_id: str = CLIENT_ID, secret: str = SECRET
) -> dict[str, str]:
    response = await _token(client, client_id, secret)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _eventually(check: Callable[[], bool], seconds: float = 3.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await anyio.sleep(0.01)
    raise AssertionError("condition not reached in time")


async def _settled(sim: Simulator, count: int) -> None:
    """Entries are recorded when a faulted exchange ends server-side: wait for them."""
    await _eventually(lambda: len(sim.request_log.entries()) >= count)


async def test_status_fault_answers_5xx_with_json_and_is_marked() -> None:
    sim = _sim(Rule("status", paths=(LISTINGS,), params=StatusParams((502,))))
    async with running(sim) as (_, client):
        auth = await _auth(client)
        failed = await client.get(URL_LISTINGS, headers=auth)
        assert failed.status_code == 502
        assert failed.json()["error"]["code"] == "BAD_GATEWAY"
        assert "X-RateLimit-Remaining-Second" in failed.headers
        assert (await client.get("/guesty/v1/reservations", headers=auth)).status_code == 200
    [entry] = sim.request_log.entries(path=URL_LISTINGS)
    assert (entry.status, entry.fault) == (502, "status")
    assert sim.request_log.entries(path="/guesty/v1/reservations")[0].fault is None
    assert sim.request_log.count(path=URL_LISTINGS, status=502) == 1
    assert sim.request_log.count_faults("status") == 1


async def test_timeout_hangs_past_the_read_timeout_and_ends_when_the_client_leaves() -> None:
    sim = _sim(Rule("timeout", paths=(LISTINGS,), params=HangParams(30.0)))
    async with running(sim) as (_, client):
        auth = await _auth(client)
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(URL_LISTINGS, headers=auth, timeout=0.3)
        assert time.perf_counter() - started < 5
        await _settled(sim, 2)  # the hang noticed the disconnect, not its 30 s
        assert len(sim.runtime.hangs) == 0
        assert (await client.get("/guesty/v1/reservations", headers=auth)).status_code == 200
    entry = sim.request_log.entries(path=URL_LISTINGS)[0]
    assert (entry.status, entry.fault) == (0, "timeout")
    assert sim.request_log.count(path=URL_LISTINGS, status=0) == 1


async def test_stopping_the_server_ends_a_hang_at_once() -> None:
    sim = _sim(Rule("timeout", paths=(LISTINGS,), params=HangParams(60.0)))
    errors: list[BaseException] = []
    async with httpx.AsyncClient(timeout=30) as client, anyio.create_task_group() as tg:
        async with SimulatorServer(sim) as server:
            client.base_url = httpx.URL(server.base_url)
            auth = await _auth(client)

            async def hung() -> None:
                try:
                    await client.get(URL_LISTINGS, headers=auth)
                except httpx.TransportError as exc:
                    errors.append(exc)

            tg.start_soon(hung)
            await _eventually(lambda: len(sim.runtime.hangs) > 0)
            stopping = time.perf_counter()
        # uvicorn alone would wait out its 5 s graceful shutdown for the hung request
        assert time.perf_counter() - stopping < 2
    assert errors and not isinstance(errors[0], httpx.TimeoutException)


async def test_reset_mid_body_is_a_transport_error_after_the_head() -> None:
    sim = _sim(Rule("reset", paths=(LISTINGS,), params=CutParams(0.5, 0.5)))
    async with running(sim) as (_, client):
        auth = await _auth(client)
        received = b""
        with pytest.raises(httpx.ReadError):
            async with client.stream("GET", URL_LISTINGS, params={"limit": 100}, headers=auth) as response:
                assert response.status_code == 200
                declared = int(response.headers["content-length"])
                async for chunk in response.aiter_raw():
                    received += chunk
        assert len(received) < declared
        with pytest.raises(httpx.ReadError):
            await client.get(URL_LISTINGS, headers=auth)
    await _settled(sim, 3)
    assert [(e.status, e.fault) for e in sim.request_log.entries(path=URL_LISTINGS)] == [(0, "reset")] * 2


async def test_truncated_body_is_a_protocol_error_not_a_short_body() -> None:
    sim = _sim(Rule("truncated", paths=(LISTINGS,), params=CutParams(0.3, 0.3)))
    async with running(sim) as (_, client):
        auth = await _auth(client)
        received = b""
        with pytest.raises(httpx.RemoteProtocolError, match=r"complete message body"):
            async with client.stream("GET", URL_LISTINGS, headers=auth) as response:
                assert response.status_code == 200
                declared = int(response.headers["content-length"])
                async for chunk in response.aiter_raw():
                    received += chunk
        assert 0 < len(received) < declared
    await _settled(sim, 2)
    entry = sim.request_log.entries(path=URL_LISTINGS)[0]
    assert (entry.status, entry.fault) == (0, "truncated")


async def test_malformed_json_is_a_complete_200_that_does_not_parse() -> None:
    sim = _sim(Rule("malformed_json", paths=(LISTINGS,)))
    async with running(sim) as (_, client):
        auth = await _auth(client)
        response = await client.get(URL_LISTINGS, headers=auth)
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(response.content)
        assert response.content.startswith(b"{")
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(response.content)
    entry = sim.request_log.entries(path=URL_LISTINGS)[0]
    assert (entry.status, entry.fault) == (200, "malformed_json")


async def test_slow_body_trickles_but_arrives_complete() -> None:
    sim = _sim(Rule("slow_body", paths=(LISTINGS,), params=SlowParams(seconds=0.6, chunks=6)))
    async with running(sim) as (_, client):
        auth = await _auth(client)
        params = {"limit": 50}
        started = time.perf_counter()
        slow = await client.get(URL_LISTINGS, params=params, headers=auth, timeout=0.5)
        elapsed = time.perf_counter() - started
        sim.set_faults(None)
        fast = await client.get(URL_LISTINGS, params=params, headers=auth)
    assert slow.status_code == 200 and elapsed >= 0.45
    assert orjson.loads(slow.content) == orjson.loads(fast.content)
    entry = sim.request_log.entries(path=URL_LISTINGS)[0]
    assert (entry.status, entry.fault) == (200, "slow_body")


async def test_rate_limit_alternates_retry_after_forms_and_records_the_promise() -> None:
    sim = _sim(Rule("rate_limit", paths=(LISTINGS,), params=RateLimitParams(retry_after_s=2)))
    async with running(sim) as (_, client):
        auth = await _auth(client)
        before = time.time()
        answers = [await client.get(URL_LISTINGS, headers=auth) for _ in range(2)]
    assert [r.status_code for r in answers] == [429, 429]
    values = [r.headers["retry-after"] for r in answers]
    # The account's counter includes its token request: request 1 (odd) gets the date form.
    assert values[1] == "2"
    promised = email.utils.parsedate_to_datetime(values[0]).timestamp()
    assert before + 2 <= promised <= before + 4
    entries = sim.request_log.entries(path=URL_LISTINGS)
    assert [e.fault for e in entries] == ["rate_limit"] * 2
    assert entries[0].retry_at == promised
    assert entries[1].retry_at is not None and entries[1].retry_at >= entries[1].time + 2
    # The second request came right after the first promise: the ledger flags it.
    assert sim.request_log.retry_violations() == [(entries[0], entries[1])]


async def test_revoked_tokens_answer_401_until_a_new_token_is_fetched() -> None:
    # The account's requests are numbered from 0: token (0), listings (1, 2), then revoked at 3.
    sim = _sim(Rule("revoke_tokens", accounts=(CLIENT_ID,), from_request=3))
    async with running(sim) as (_, client):
        auth = await _auth(client)
        other = await _auth(client, OTHER_ID, OTHER_SECRET)
        statuses = [(await client.get(URL_LISTINGS, headers=auth)).status_code for _ in range(4)]
        assert statuses == [200, 200, 401, 401]
        assert (await client.get(URL_LISTINGS, headers=other)).status_code == 200
        fresh = await _auth(client)
        assert [(await client.get(URL_LISTINGS, headers=fresh)).status_code for _ in range(3)] == [200] * 3
    marked = [e for e in sim.request_log.entries(account=CLIENT_ID) if e.fault]
    assert [(e.path, e.status, e.fault) for e in marked] == [(URL_LISTINGS, 401, "revoke_tokens")]


async def test_token_outage_then_recovery() -> None:
    clock = FakeClock()
    sim = _sim(*fault_presets.token_outage(10.0).rules, clock=clock)
    async with running(sim) as (_, client):
        failed = await _token(client)
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        clock.now += 9.9
        assert (await _token(client)).status_code == 503
        clock.now += 0.1
        auth = await _auth(client)
        assert (await client.get(URL_LISTINGS, headers=auth)).status_code == 200
    assert sim.request_log.count_faults("token_outage", path="/guesty/oauth2/token") == 2


async def test_outage_fails_everything_then_recovers_but_spares_the_control_plane() -> None:
    clock = FakeClock()
    sim = _sim(clock=clock)
    async with running(sim) as (_, client):
        auth = await _auth(client)
        sim.set_faults(fault_presets.outage(120))
        assert (await client.get(URL_LISTINGS, headers=auth)).status_code == 503
        assert (await _token(client)).status_code == 503
        clock.now += 60
        assert (await client.get("/guesty/v1/reservations", headers=auth)).status_code == 503
        assert (await client.get("/_sim/health")).status_code == 200
        assert (await client.get("/_sim/requests")).status_code == 200
        clock.now += 60
        assert (await client.get(URL_LISTINGS, headers=auth)).status_code == 200
    assert sim.request_log.count_faults("outage") == 3
    assert all(not e.path.startswith("/_sim") for e in sim.request_log.entries())


async def test_outage_by_reset_and_per_account() -> None:
    sim = _sim(Rule("outage", accounts=(CLIENT_ID,), params=OutageParams(mode="reset")))
    async with running(sim) as (_, client):
        with pytest.raises(httpx.TransportError) as caught:
            await _token(client)
        assert not isinstance(caught.value, httpx.TimeoutException)
        other = await _auth(client, OTHER_ID, OTHER_SECRET)
        assert (await client.get(URL_LISTINGS, headers=other)).status_code == 200
    await _settled(sim, 3)
    assert sim.request_log.count(account=CLIENT_ID, status=0) == 1


async def test_tighten_limits_silently_from_the_plan() -> None:
    clock = FakeClock()
    sim = _sim(clock=clock)
    sim.set_limits(enabled=True)
    async with running(sim) as (_, client):
        auth = await _auth(client)
        sim.set_faults(
            FaultSpec(
                (Rule("tighten_limits", accounts=(CLIENT_ID,), from_request=1, params=LimitParams(0.1)),)
            )
        )
        statuses: list[int] = []
        for _ in range(3):  # frozen clock: the documented 15/s would admit all three
            response = await client.get(URL_LISTINGS, headers=auth)
            statuses.append(response.status_code)
            assert response.headers["X-RateLimit-Limit-Second"] == "15"
        assert statuses[0] == 200 and 429 in statuses
        other = await _auth(client, OTHER_ID, OTHER_SECRET)
        assert [(await client.get(URL_LISTINGS, headers=other)).status_code for _ in range(3)] == [200] * 3


async def test_control_plane_installs_inspects_and_clears_faults() -> None:
    sim = _sim()
    async with running(sim) as (_, client):
        auth = await _auth(client)
        spec = {"seed": 3, "rules": [{"kind": "status", "paths": [LISTINGS], "params": {"statuses": [504]}}]}
        installed = await client.post("/_sim/faults", json=spec)
        assert installed.status_code == 200
        assert installed.json()["rules"][0]["params"] == {"statuses": [504]}
        assert (await client.get(URL_LISTINGS, headers=auth)).status_code == 504
        state = (await client.get("/_sim/faults")).json()
        assert state["seed"] == 3 and state["requests"] == {CLIENT_ID: 1}
        assert (await client.delete("/_sim/faults")).status_code == 200
        assert (await client.get(URL_LISTINGS, headers=auth)).status_code == 200
        preset = await client.post("/_sim/faults", json={"preset": "storm:60", "seed": 9})
        assert preset.status_code == 200 and len(preset.json()["rules"]) == 2
        assert (await client.get(URL_LISTINGS, headers=auth)).status_code == 429
        bad = await client.post("/_sim/faults", json={"rules": [{"kind": "gremlins"}]})
        assert bad.status_code == 400 and "gremlins" in bad.json()["error"]
        assert (await client.post("/_sim/faults", json={"preset": "nope"})).status_code == 400
        log = (await client.get("/_sim/requests", params={"last": 10})).json()
        assert {f["fault"] for f in log["faults"]} == {"status", "rate_limit"}
        assert any(e["fault"] == "rate_limit" and e["retry_at"] for e in log["entries"])


async def test_token_outage_can_hang_instead() -> None:
    sim = _sim(*fault_presets.token_outage(60, mode="timeout", hang_s=30).rules)
    async with running(sim) as (_, client):
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "/guesty/oauth2/token",
                data={"grant_type": "client_credentials", "scope": "open-api", "client_id": CLIENT_ID},
                timeout=0.3,
            )
        await _settled(sim, 1)
    entry = sim.request_log.entries(path="/guesty/oauth2/token")[0]
    assert (entry.status, entry.fault) == (0, "token_outage")
