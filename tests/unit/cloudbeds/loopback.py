"""The Cloudbeds dataset served over loopback HTTP for the connector's tests: the methods
the connector calls, nothing more (no gateway: no faults, limits or auth beyond the key)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.config import ResourceSettings
from syncd.connectors.base import Page
from syncd.connectors.cloudbeds import PARTNER
from syncd.connectors.cloudbeds.connector import CloudbedsConnector
from syncd.http.auth import HeaderAuth
from syncd.http.classify import PartnerRules
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.throttle import Throttle
from syncd.http.transport import PartnerTransport
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator.profiles.cloudbeds.data import CloudbedsAccount
from syncd.simulator.server import EmbeddedServer

API_KEY = "cbat_loopback-test-key"
PREFIX = "/api/v1.3"


@dataclass
class Served:
    """The account behind the server; ``before`` runs before each answer (by method)."""

    account: CloudbedsAccount
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    before: Callable[[str, int], None] | None = None
    body: Callable[[str], bytes | None] | None = None  # a canned answer, instead of the dataset's
    batch: int = 10  # property ids per request: several batches in a small account


def app(served: Served) -> Starlette:
    def method(name: str) -> Route:
        async def handle(request: Request) -> Response:
            if request.headers.get("x-api-key") != API_KEY:
                return Response(b'{"error":"access_denied"}', 401, media_type="application/json")
            params = dict(request.query_params)
            served.calls.append((name, params))
            if served.before is not None:
                served.before(name, sum(1 for n, _ in served.calls if n == name))
            canned = served.body(name) if served.body is not None else None
            a = served.account
            if canned is not None:
                body: bytes | None = canned
            elif name == "getHotels":
                body = a.get_hotels(params)
            elif name == "getReservations":
                body = a.get_reservations(params)
            else:
                body = a.get_reservation(params.get("reservationID", ""))
            if body is None:
                return Response(
                    b'{"success":false,"message":"Not found"}', 404, media_type="application/json"
                )
            return Response(body, media_type="application/json")

        return Route(f"{PREFIX}/{name}", handle)

    return Starlette(routes=[method(n) for n in ("getHotels", "getReservations", "getReservation")])


@asynccontextmanager
async def serving(served: Served) -> AsyncIterator[CloudbedsConnector]:
    """A connector whose partner is ``served``, on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app(served), http="httptools", loop="none", lifespan="off", log_config=None, log_level="warning"
    )
    server = EmbeddedServer(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        with anyio.fail_after(10):
            await server.ready.wait()
        options = ClientOptions(
            partner="cloudbeds",
            integration_id="t",
            base_url=f"http://127.0.0.1:{port}{PREFIX}",
            max_attempts=1,
        )
        transport = PartnerTransport()
        client = PartnerClient(
            transport,
            options,
            throttle=Throttle(),
            metrics=Metrics(),
            log=get_logger(),
            auth=HeaderAuth("x-api-key", API_KEY),
            rules=PartnerRules(body_error=PARTNER.classify_body),
        )
        # A failing test must not cancel uvicorn mid-serve (its sockets would outlive the
        # loop): the failure waits for a graceful shutdown, then propagates.
        failure: BaseException | None = None
        try:
            yield CloudbedsConnector(client, 100, batch=served.batch)
        except BaseException as exc:
            failure = exc
        await transport.aclose()
        server.should_exit = True
    sock.close()
    if failure is not None:
        raise failure


async def pages(
    connector: CloudbedsConnector,
    resource: str,
    checkpoint: dict[str, object] | None,
    overlap_s: float = 0,
    settings: ResourceSettings | None = None,
) -> list[Page]:
    chosen = settings or ResourceSettings(overlap_s=overlap_s)
    return [p async for p in connector.stream(resource, checkpoint, chosen)]
