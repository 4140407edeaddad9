"""The Guesty stream over real HTTP: a page requested ahead (up to four requests in flight)
is used only when it lines up with the page before it; records never go missing."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import orjson
import pytest

from syncd import pipeline
from syncd.config import ResourceSettings
from syncd.connectors.guesty.connector import GuestyConnector, _id_of
from syncd.http.auth import HeaderAuth
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.throttle import Throttle
from syncd.http.transport import PartnerTransport
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.postgres import Store

pytestmark = pytest.mark.anyio
CLIENT = ("guesty-acct-1", "sim-secret-1")


class MutatingTransport(httpx.AsyncBaseTransport):
    """Counts listing requests. With ``at``: once the ``at``-th is answered, runs ``on``,
    and holds the next one until then, so a change lands between pages requested
    together."""

    def __init__(self, at: int | None = None, on: Any = None) -> None:
        self.inner = PartnerTransport()
        self.listings = 0
        self.at, self.on = at, on
        self.changed = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/listings"):
            return await self.inner.handle_async_request(request)
        self.listings += 1
        n = self.listings
        if self.at is not None and n == self.at + 1:
            await self.changed.wait()
        response = await self.inner.handle_async_request(request)
        if n == self.at:
            self.on()
            self.changed.set()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _stream(server: SimulatorServer, transport: MutatingTransport) -> list[str]:
    async with httpx.AsyncClient() as plain:
        form = {"grant_type": "client_credentials", "scope": "open-api", "client_id": CLIENT[0]}
        token = (
            await plain.post(server.url("guesty", "/oauth2/token"), data=form | {"client_secret": CLIENT[1]})
        ).json()
    client = PartnerClient(
        transport,
        ClientOptions(partner="guesty", integration_id="t", base_url=server.url("guesty", "/v1")),
        throttle=Throttle(),
        metrics=Metrics(),
        log=get_logger(),
        auth=HeaderAuth("Authorization", f"Bearer {token['access_token']}"),
    )
    connector = GuestyConnector(client, 100, log=get_logger())
    seen: list[str] = []
    async for page in connector.stream("properties", None, ResourceSettings(overlap_s=0)):
        seen.extend(i for i in map(_id_of, page.records) if i is not None)
    return seen


def _mocked(partner: Any) -> PartnerClient:
    """A client whose partner is ``partner`` (request -> response), no network."""
    options = ClientOptions(
        partner="guesty", integration_id="acme", base_url="https://open-api.guesty.com/v1"
    )
    transport = httpx.MockTransport(partner)
    return PartnerClient(transport, options, throttle=Throttle(), metrics=Metrics(), log=get_logger())


def _sim(listings: int) -> Simulator:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", *CLIENT, GuestyAccount(seed=3, listings=listings, reservations_per_listing=0))
    return sim


async def test_pages_ahead_line_up_and_every_record_comes_once() -> None:
    sim = _sim(1_050)
    async with SimulatorServer(sim) as server, MutatingTransport() as transport:
        seen = await _stream(server, transport)
    assert sorted(seen) == sorted(t.id for t in sim.account(CLIENT[0]).truth_listings())
    assert len(seen) == len(set(seen)) == 1_050
    # The first request alone (most runs are one short page), then up to four at a time,
    # as many as the partner's count calls for: a page of 100 carries 99 new records after
    # its re-read anchor, so 11 pages (1 + 4 + 4 + 2) cover 1,050 records.
    assert transport.listings == 11


async def test_a_change_between_the_two_requests_discards_the_page_ahead() -> None:
    sim = _sim(2_000)
    account = sim.account(CLIENT[0])
    changed: dict[str, tuple[str, ...]] = {}

    def mutate() -> None:  # lands between a page and the page requested ahead of it
        summary = account.mutate(400, seed=5)
        changed["gone"] = summary.listings_updated + summary.listings_deleted

    async with SimulatorServer(sim) as server, MutatingTransport(at=4, on=mutate) as transport:
        seen = set(await _stream(server, transport))
    untouched = {t.id for t in account.truth_listings()} - set(changed["gone"])
    assert untouched <= seen  # nothing skipped: a shifted page ahead was not trusted
    live = {t.id for t in account.truth_listings()}
    assert live <= seen  # updated and inserted ones came at the end, in their new place
    # Requests beyond the 21 an undisturbed walk needs: the discarded page ahead, re-asked.
    assert transport.listings > 21


class FailingTransport(MutatingTransport):
    """Raises ``error`` instead of sending one listing request: the first page asked ahead
    (``ahead=True``: a skip past a page; anchored requests here skip < 7, a tie group), or
    the first anchored request after the opening one, which is sent alone."""

    def __init__(self, ahead: bool, error: Exception) -> None:
        super().__init__()
        self.ahead, self.error = ahead, error
        self.anchored = 0
        self.failed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/listings") and not self.failed:
            is_ahead = int(request.url.params["skip"]) >= 50
            self.anchored += not is_ahead
            if (is_ahead and self.ahead) or (not self.ahead and self.anchored == 2):
                self.failed = True
                self.listings += 1
                raise self.error
        return await super().handle_async_request(request)


async def test_a_failed_page_ahead_only_loses_its_head_start() -> None:
    sim = _sim(1_050)
    async with SimulatorServer(sim) as server, FailingTransport(True, RuntimeError("boom")) as transport:
        seen = await _stream(server, transport)
    assert transport.failed
    assert len(seen) == len(set(seen)) == 1_050
    # The 11 of an undisturbed walk, the failed one, and the two pages asked ahead of it
    # with it: they cannot be checked against a page that never came, so are asked again.
    assert transport.listings == 14


async def test_a_failing_page_is_raised_as_itself_not_as_a_task_group() -> None:
    sim = _sim(1_050)
    async with SimulatorServer(sim) as server, FailingTransport(False, KeyError("boom")) as transport:
        with pytest.raises(KeyError):
            await _stream(server, transport)
    assert transport.failed


async def test_an_id_with_nul_at_a_page_end_does_not_poison_the_checkpoint(database_url: str) -> None:
    """The last record of a page is the cursor's anchor, stored in the checkpoint (jsonb,
    which cannot hold NUL): such an id used to fail its batch's commit on every retry."""
    ts = "2025-01-01T00:00:00.000Z"
    page = [
        {"_id": "a1", "title": "One", "lastUpdatedAt": ts},
        {"_id": "a2", "title": "Two", "lastUpdatedAt": ts},
        {"_id": "a3\u0000x", "title": "Three", "lastUpdatedAt": ts},
    ]

    def partner(request: httpx.Request) -> httpx.Response:
        skip = int(request.url.params["skip"])
        return httpx.Response(200, json={"results": page[skip:], "count": len(page)})

    client = _mocked(partner)
    connector = GuestyConnector(client, 3, log=get_logger())
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (60.0, True)})
        async with store.sync_session("acme", "properties") as session:
            assert session is not None
            stats = await pipeline.run(
                session, connector, "properties", ResourceSettings(overlap_s=0), pipeline.PipelineOptions(),
                Metrics(), get_logger(), anyio.Event(),
            )  # fmt: skip
            checkpoint = await session.checkpoint()
    assert stats.inserted == 3
    assert checkpoint is not None and checkpoint["skip"] == 3 and checkpoint["anchor"] is None


@pytest.mark.parametrize("count", ["1050", 1050.0, None, True])
async def test_a_count_of_another_type_is_ignored_not_an_undecodable_page(count: Any) -> None:
    """``count`` only decides whether to ask ahead; partners that send it as a string or a
    float used to have every page refused (and the run failed after the salvage)."""
    records = [
        {"_id": f"{i:024x}", "lastUpdatedAt": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z"}
        for i in range(250)
    ]

    def partner(request: httpx.Request) -> httpx.Response:
        skip, limit = int(request.url.params["skip"]), int(request.url.params["limit"])
        since = orjson.loads(request.url.params["filters"])[0]["value"]
        matching = [r for r in records if r["lastUpdatedAt"] >= since]
        return httpx.Response(200, json={"results": matching[skip : skip + limit], "count": count})

    client = _mocked(partner)
    seen: list[str] = []
    async for page in GuestyConnector(client, 100).stream("properties", None, ResourceSettings(overlap_s=0)):
        seen.extend(i for i in map(_id_of, page.records) if i is not None)
    assert sorted(seen) == [r["_id"] for r in records]
