"""The production transport (our HTTP/1.1 wire under httpx's types) against the simulator's
wire faults: each failure keeps the httpx meaning the partner client classifies by."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import httpx
import orjson
import pytest

from syncd import errors
from syncd.http.auth import HeaderAuth
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.throttle import Throttle
from syncd.http.transport import USER_AGENT, WireTransport
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator.fault_spec import CutParams, HangParams, Rule
from syncd.simulator.server import Simulator, SimulatorServer
from tests.integration.http.test_wire import read_head, scripted
from tests.integration.simulator.test_faults_http import CLIENT_ID, LISTINGS, SECRET, _auth, _settled, _sim

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def served(sim: Simulator) -> AsyncIterator[tuple[SimulatorServer, httpx.AsyncClient]]:
    async with (
        SimulatorServer(sim) as server,
        httpx.AsyncClient(base_url=server.base_url, transport=WireTransport(), timeout=5.0) as client,
    ):
        yield server, client


async def test_a_page_arrives_whole_and_the_connection_is_reused() -> None:
    sim = _sim()
    async with served(sim) as (_, client):
        auth = await _auth(client)
        response = await client.get(LISTINGS, params={"limit": 100, "skip": 20}, headers=auth)
        again = await client.get(LISTINGS, params={"limit": 1}, headers=auth)
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["content-length"])
    assert len(orjson.loads(response.content)["results"]) == 100
    assert "x-ratelimit-limit-second" in response.headers
    assert again.status_code == 200
    [first, _] = sim.request_log.entries(path=LISTINGS)
    assert "skip=20" in first.raw_query


@asynccontextmanager
async def canned(answer: bytes) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A loopback server answering every request with ``answer``; it keeps request heads."""
    heads: list[bytes] = []

    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        heads.append(await read_head(stream))
        await stream.send(answer)

    async with scripted(script) as (base, _):
        yield base, heads


async def test_redirects_are_not_followed_cookies_not_kept_and_we_say_who_we_are() -> None:
    answer = (
        b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\nSet-Cookie: s=1\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    async with canned(answer) as (base, heads), WireTransport() as transport:
        for _ in range(2):
            response = await transport.handle_async_request(httpx.Request("GET", base + "/a"))
            await response.aread()
            assert response.status_code == 302
            assert response.headers["location"] == "http://elsewhere.invalid/"
    assert len(heads) == 2  # nothing went to the Location
    assert all(b"\r\ncookie:" not in head.lower() for head in heads)
    assert f"\r\nUser-Agent: {USER_AGENT}\r\n".encode() in heads[0]
    assert b"\r\nAccept-Encoding: gzip, deflate\r\n" in heads[0]  # only what httpx decodes


async def test_a_reset_mid_body_is_a_transport_error() -> None:
    sim = _sim(Rule("reset", paths=(LISTINGS,), params=CutParams(0.5, 0.5)))
    async with served(sim) as (_, client):
        auth = await _auth(client)
        # The reset may arrive as the short body (a protocol error) or as the socket's error.
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(LISTINGS, params={"limit": 100}, headers=auth)
        # The broken connection was dropped, not pooled: the next request is answered.
        assert (await client.get("/v1/reservations", headers=auth)).status_code == 200
    await _settled(sim, 3)


async def test_a_truncated_body_is_a_protocol_error_not_a_short_body() -> None:
    sim = _sim(Rule("truncated", paths=(LISTINGS,), params=CutParams(0.3, 0.3)))
    async with served(sim) as (_, client):
        auth = await _auth(client)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(LISTINGS, headers=auth)


async def test_a_hang_is_a_read_timeout() -> None:
    sim = _sim(Rule("timeout", paths=(LISTINGS,), params=HangParams(30.0)))
    async with served(sim) as (_, client):
        auth = await _auth(client)
        with pytest.raises(httpx.ReadTimeout):
            await client.get(LISTINGS, headers=auth, timeout=0.3)
        assert (await client.get("/v1/reservations", headers=auth)).status_code == 200


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with SimulatorServer(_sim()) as server:
        url = server.base_url  # the port is free again once the server stopped
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(transport=WireTransport(), timeout=2.0) as client:
            await client.get(url + LISTINGS)


async def test_a_gzipped_body_arrives_decoded() -> None:
    body = orjson.dumps({"results": [{"_id": "a1"}] * 50})
    packed = gzip.compress(body)
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(packed)
    ) + packed
    async with canned(answer) as (base, heads), httpx.AsyncClient(transport=WireTransport()) as client:
        response = await client.get(base + "/listings")
    assert response.content == body
    assert b"\r\naccept-encoding: gzip, deflate\r\n" in heads[0].lower()


async def test_the_partner_client_labels_wire_failures_as_httpx_did() -> None:
    """What operators see in ``syncd_api_calls_total``: a reset is a transport error, a
    hang a timeout, and both are retryable unavailability."""
    sim = _sim(
        Rule("reset", paths=(LISTINGS,), params=CutParams(0.5, 0.5)),
        Rule("timeout", paths=("/v1/reservations",), params=HangParams(30.0)),
    )
    metrics = Metrics()
    async with SimulatorServer(sim) as server, WireTransport() as transport:
        async with httpx.AsyncClient(base_url=server.base_url) as plain:
            auth = await _auth(plain)
        options = ClientOptions(
            partner="guesty",
            integration_id="t",
            base_url=server.guesty_api_url,
            max_attempts=1,
            read_timeout_s=0.3,
        )
        client = PartnerClient(
            transport,
            options,
            throttle=Throttle(),
            metrics=metrics,
            log=get_logger(),
            auth=HeaderAuth("Authorization", auth["Authorization"]),
        )
        with pytest.raises(errors.PartnerUnavailable):
            await client.get("/listings", params={"limit": 100}, decode=orjson.loads)
        with pytest.raises(errors.PartnerUnavailable):
            await client.get("/reservations", decode=orjson.loads)
        some_id = next(iter(sim.account(CLIENT_ID).truth_listings())).id
        one = await client.get("/listings/{id}", f"/listings/{some_id}", decode=orjson.loads)
    assert one["_id"] == some_id
    calls = metrics.api_calls
    assert calls.labels("guesty", "/listings", "transport_error")._value.get() == 1
    assert calls.labels("guesty", "/reservations", "timeout")._value.get() == 1
    assert calls.labels("guesty", "/listings/{id}", "200")._value.get() == 1


async def test_the_partner_client_sends_exactly_its_query_and_form() -> None:
    """The partner client's requests on the production wire are built without an
    ``httpx.Request`` (``WireTransport.exchange``); the partner still receives exactly
    the form and the query it was given, a JSON filter included, and answers them."""
    sim = _sim()
    filters = orjson.dumps(
        [{"field": "lastUpdatedAt", "operator": "$gte", "value": "2025-01-01T00:00:00.000Z"}]
    )
    params: dict[str, str | int] = {
        "limit": 3,
        "skip": 2,
        "sort": "lastUpdatedAt",
        "filters": filters.decode(),
    }
    async with SimulatorServer(sim) as server, WireTransport() as transport:
        options = ClientOptions(partner="guesty", integration_id="t", base_url=server.guesty_api_url)
        client = PartnerClient(transport, options, throttle=Throttle(), metrics=Metrics(), log=get_logger())
        form = {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": "open-api",
        }
        token = await client.post_form_json(server.base_url + "/oauth2/token", "/oauth2/token", form)
        client.auth = HeaderAuth("Authorization", f"Bearer {token['access_token']}")
        page = await client.get("/listings", params=params, decode=orjson.loads)
    truth = sorted(sim.account(CLIENT_ID).truth_listings(), key=lambda t: (t.payload["lastUpdatedAt"], t.id))
    assert [r["_id"] for r in page["results"]] == [t.id for t in truth[2:5]]
    [sent] = sim.request_log.entries(path=LISTINGS)
    assert dict(sent.query) == {k: str(v) for k, v in params.items()}
