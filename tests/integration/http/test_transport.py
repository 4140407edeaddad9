"""The default transport (httpx's, routed per origin by ``syncd.http.transport``) against
the simulator's wire faults and scripted loopback servers: every failure keeps the httpx
meaning the partner client classifies by, and what the transport owns (keep-alive, body
framing, timeouts, the pool bound, header hygiene, TLS) behaves as production needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import orjson
import pytest

from syncd import errors
from syncd.http.auth import HeaderAuth
from syncd.http.client import USER_AGENT, ClientOptions, PartnerClient
from syncd.http.egress import Egress
from syncd.http.throttle import Throttle
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator.fault_spec import CutParams, HangParams, Rule
from syncd.simulator.server import Simulator, SimulatorServer
from tests.integration.http.scripted import ok, partner_transport, private_ca, read_head, scripted
from tests.integration.simulator.test_faults_http import (
    CLIENT_ID,
    LISTINGS,
    SECRET,
    URL_LISTINGS,
    _auth,
    _settled,
    _sim,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("both_network_backends")]


TIMEOUTS: dict[str, Any] = {"timeout": {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}}


@asynccontextmanager
async def served(sim: Simulator) -> AsyncIterator[tuple[SimulatorServer, httpx.AsyncClient]]:
    async with (
        SimulatorServer(sim) as server,
        httpx.AsyncClient(base_url=server.base_url, transport=partner_transport(), timeout=5.0) as client,
    ):
        yield server, client


async def fetch(
    transport: httpx.AsyncBaseTransport,
    method: str,
    url: str,
    extensions: dict[str, Any] = TIMEOUTS,
    **kw: Any,
) -> tuple[int, bytes]:
    response = await transport.handle_async_request(httpx.Request(method, url, extensions=extensions, **kw))
    try:
        return response.status_code, await response.aread()
    finally:
        await response.aclose()


def client_for(transport: httpx.AsyncBaseTransport, base_url: str, **options: Any) -> PartnerClient:
    return PartnerClient(
        transport,
        ClientOptions(partner="p", integration_id="t", base_url=base_url, **options),
        throttle=Throttle(),
        metrics=Metrics(),
        log=get_logger(),
    )


async def test_a_page_arrives_whole_and_the_connection_is_reused() -> None:
    sim = _sim()
    async with served(sim) as (_, client):
        auth = await _auth(client)
        response = await client.get(URL_LISTINGS, params={"limit": 100, "skip": 20}, headers=auth)
        again = await client.get(URL_LISTINGS, params={"limit": 1}, headers=auth)
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["content-length"])
    assert len(orjson.loads(response.content)["results"]) == 100
    assert "x-ratelimit-limit-second" in response.headers
    assert again.status_code == 200
    [first, _] = sim.request_log.entries(path=URL_LISTINGS)
    assert "skip=20" in first.raw_query


@asynccontextmanager
async def canned(answer: bytes) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A loopback server answering every request with ``answer``; it keeps request heads."""
    heads: list[bytes] = []

    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        heads.append(await read_head(stream))
        await stream.send(answer)

    async with scripted(script) as (base, _):
        yield base, heads


async def test_redirects_are_not_followed_cookies_not_kept_and_we_say_who_we_are() -> None:
    answer = (
        b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\nSet-Cookie: s=1\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    async with canned(answer) as (base, heads), partner_transport() as transport:
        client = client_for(transport, base, max_attempts=1)
        for _ in range(2):
            with pytest.raises(errors.PartnerError):
                await client.get("/a", decode=orjson.loads)
    assert len(heads) == 2  # nothing went to the Location
    assert all(b"\r\ncookie:" not in head.lower() for head in heads)
    assert f"\r\nUser-Agent: {USER_AGENT}\r\n".encode() in heads[0]
    assert b"\r\nAccept-Encoding: gzip, deflate\r\n" in heads[0]  # only what we inflate, bounded


async def test_a_reset_mid_body_is_a_transport_error() -> None:
    sim = _sim(Rule("reset", paths=(LISTINGS,), params=CutParams(0.5, 0.5)))
    async with served(sim) as (_, client):
        auth = await _auth(client)
        # The reset may arrive as the short body (a protocol error) or as the socket's error.
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(URL_LISTINGS, params={"limit": 100}, headers=auth)
        # The broken connection was dropped, not pooled: the next request is answered.
        assert (await client.get("/guesty/v1/reservations", headers=auth)).status_code == 200
    await _settled(sim, 3)


async def test_a_truncated_body_is_a_protocol_error_not_a_short_body() -> None:
    sim = _sim(Rule("truncated", paths=(LISTINGS,), params=CutParams(0.3, 0.3)))
    async with served(sim) as (_, client):
        auth = await _auth(client)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(URL_LISTINGS, headers=auth)


async def test_a_hang_is_a_read_timeout() -> None:
    sim = _sim(Rule("timeout", paths=(LISTINGS,), params=HangParams(30.0)))
    async with served(sim) as (_, client):
        auth = await _auth(client)
        with pytest.raises(httpx.ReadTimeout):
            await client.get(URL_LISTINGS, headers=auth, timeout=0.3)
        assert (await client.get("/guesty/v1/reservations", headers=auth)).status_code == 200


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with SimulatorServer(_sim()) as server:
        url = server.base_url  # the port is free again once the server stopped
    with pytest.raises(httpx.ConnectError):
        async with partner_transport() as transport:
            await fetch(transport, "GET", url + LISTINGS)


async def test_the_partner_client_labels_wire_failures() -> None:
    """What operators see in ``syncd_api_calls_total``: a reset is a transport error, a
    hang a timeout, and both are retryable unavailability."""
    sim = _sim(
        Rule("reset", paths=(LISTINGS,), params=CutParams(0.5, 0.5)),
        Rule("timeout", paths=("/v1/reservations",), params=HangParams(30.0)),
    )
    metrics = Metrics()
    async with SimulatorServer(sim) as server, partner_transport() as transport:
        async with httpx.AsyncClient(base_url=server.base_url) as plain:
            auth = await _auth(plain)
        options = ClientOptions(
            partner="guesty",
            integration_id="t",
            base_url=server.url("guesty", "/v1"),
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
    """The partner receives exactly the form and the query it was given, a JSON filter
    included, and answers them."""
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
    async with SimulatorServer(sim) as server, partner_transport() as transport:
        client = client_for(transport, server.url("guesty", "/v1"))
        form = {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": "open-api",
        }
        token = await client.post_form_json(server.url("guesty", "/oauth2/token"), "/oauth2/token", form)
        client.auth = HeaderAuth("Authorization", f"Bearer {token['access_token']}")
        page = await client.get("/listings", params=params, decode=orjson.loads)
    truth = sorted(sim.account(CLIENT_ID).truth_listings(), key=lambda t: (t.payload["lastUpdatedAt"], t.id))
    assert [r["_id"] for r in page["results"]] == [t.id for t in truth[2:5]]
    [sent] = sim.request_log.entries(path=URL_LISTINGS)
    assert dict(sent.query) == {k: str(v) for k, v in params.items()}


async def test_a_kept_alive_connection_carries_the_next_request() -> None:
    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        for i in range(3):
            await read_head(stream)
            await stream.send(ok(b"answer %d" % i))

    async with (
        scripted(script) as (base, accepted),
        partner_transport() as transport,
    ):
        answers = [await fetch(transport, "GET", base + "/a") for _ in range(3)]
    assert answers == [(200, b"answer 0"), (200, b"answer 1"), (200, b"answer 2")]
    assert accepted[0] == 1


async def test_a_body_delimited_by_the_close_or_in_chunks_arrives_whole() -> None:
    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        await read_head(stream)
        if n == 0:  # no length: the body ends when the server closes
            await stream.send(b"HTTP/1.1 200 OK\r\n\r\nfirst part, ")
            await anyio.sleep(0.05)
            await stream.send(b"second part")
        else:
            await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await anyio.sleep(0.05)
            await stream.send(b"6\r\n world\r\n0\r\n\r\n")
            await anyio.sleep(1)  # keeps the connection open: the chunks alone end the body

    async with (
        scripted(script) as (base, accepted),
        partner_transport() as transport,
    ):
        assert await fetch(transport, "GET", base + "/close") == (200, b"first part, second part")
        assert await fetch(transport, "GET", base + "/chunks") == (200, b"hello world")
    assert accepted[0] == 2  # the close-delimited connection was not pooled


async def test_a_trickling_body_is_not_a_read_timeout_but_a_stalled_one_is() -> None:
    """The read timeout bounds the silence between reads (the request's deadline bounds the
    whole exchange: ``test_hostile_responses``)."""

    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        await read_head(stream)
        pieces = [b"x" * 100] * 8
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % sum(map(len, pieces)))
        for piece in pieces:
            await anyio.sleep(0.1 if n == 0 else 0.6)
            await stream.send(piece)

    timeouts = {"timeout": {"connect": 2.0, "read": 0.3, "write": 2.0, "pool": 2.0}}
    async with scripted(script) as (base, _), partner_transport() as transport:
        assert await fetch(transport, "GET", base + "/slow", timeouts) == (200, b"x" * 800)
        with pytest.raises(httpx.ReadTimeout):
            await fetch(transport, "GET", base + "/stalled", timeouts)


async def test_the_pool_bounds_requests_in_flight_and_a_cancelled_one_frees_its_slot() -> None:
    release = anyio.Event()

    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        while True:
            head = await read_head(stream)
            if b"/held" in head:
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
                await release.wait()
                return
            await stream.send(ok(b"free"))

    timeouts = {"timeout": {"connect": 2.0, "read": 5.0, "write": 2.0, "pool": 0.2}}
    async with (
        scripted(script) as (base, _),
        partner_transport(max_connections=1) as transport,
    ):
        async with anyio.create_task_group() as tg:
            body_started = anyio.Event()

            async def held() -> None:
                request = httpx.Request("GET", base + "/held", extensions=timeouts)
                response = await transport.handle_async_request(request)
                try:
                    body_started.set()
                    await response.aread()
                finally:
                    await response.aclose()

            tg.start_soon(held)
            await body_started.wait()
            with pytest.raises(httpx.PoolTimeout):
                await fetch(transport, "GET", base + "/other", timeouts)
            tg.cancel_scope.cancel()  # the held response, cancelled halfway through its body
        release.set()
        assert await fetch(transport, "GET", base + "/other") == (200, b"free")


async def test_line_breaks_in_a_header_or_the_path_are_refused_before_sending() -> None:
    heads: list[bytes] = []

    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        heads.append(await read_head(stream))
        await stream.send(ok(b"{}"))

    async with scripted(script) as (base, _), partner_transport() as transport:
        client = client_for(transport, base, max_attempts=1)
        client.auth = HeaderAuth("X-Token", "t\r\nX-Injected: 1")
        with pytest.raises((errors.PartnerError, httpx.LocalProtocolError)):
            await client.get("/a", decode=orjson.loads)
        client.auth = HeaderAuth("X-Token", "t")
        with pytest.raises((errors.PartnerError, httpx.LocalProtocolError, httpx.InvalidURL)):
            await client.get("/a", "/a\r\nX-Injected: 1\r\n", decode=orjson.loads)
        assert await client.get("/a", params={"q": "a b&c=d", "n": 3}, decode=orjson.loads) == {}
    [head] = heads
    assert head.startswith(b"GET /a?q=a+b%26c%3Dd&n=3 HTTP/1.1\r\n")
    assert b"X-Injected" not in head


async def test_tls_is_verified_against_the_public_roots_unless_told_another_ca(tmp_path: Path) -> None:
    ca = private_ca(tmp_path)

    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        await read_head(stream)
        await stream.send(ok(b"over tls"))

    async with scripted(script, tls=ca.server_context()) as (base, _):
        async with partner_transport() as transport:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await fetch(transport, "GET", base + "/a")
        async with partner_transport(Egress(ca_bundle=ca.ca_pem)) as transport:
            assert await fetch(transport, "GET", base + "/a") == (200, b"over tls")
        # SSL_CERT_FILE, as httpx and OpenSSL read it, when the partner names no bundle.
        async with partner_transport(Egress(environ={"SSL_CERT_FILE": str(ca.ca_pem)})) as transport:
            assert await fetch(transport, "GET", base + "/a") == (200, b"over tls")
        async with partner_transport(
            Egress(trust_env=False, environ={"SSL_CERT_FILE": str(ca.ca_pem)})
        ) as transport:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await fetch(transport, "GET", base + "/a")
