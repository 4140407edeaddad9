"""The Hostaway dataset behind an ``httpx.MockTransport`` (no server: the profile's routes are
exercised over loopback in tests/integration), and a last-write-wins record store, as the
database applies pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from syncd.config import ResourceSettings
from syncd.connectors.hostaway import PARTNER
from syncd.connectors.hostaway.connector import HostawayConnector
from syncd.http.classify import PartnerRules
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.throttle import Throttle
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator.profiles.hostaway import data

BASE = "https://api.hostaway.test/v1"
JSON = {"content-type": "application/json"}
RULES = PartnerRules(auth_statuses=PARTNER.auth_statuses, body_error=PARTNER.classify_body)


class Api:
    """Routes ``GET /listings``, ``/reservations``, their ``/{id}`` and a listing's
    ``/calendar`` to an account; ``before``
    runs ahead of every list request (changes made while a client walks the list)."""

    def __init__(
        self, account: data.HostawayAccount, before: Callable[[httpx.Request], object] | None = None
    ):
        self.account = account
        self.before = before
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = request.url.path.removeprefix("/v1/").split("/")
        resource = parts[0]
        if parts[-1] == "calendar":
            try:
                days = self.account.calendar(parts[1], dict(request.url.params))
            except ValueError as exc:
                return httpx.Response(400, content=data.fail_body(str(exc)), headers=JSON)
            if days is None:
                return httpx.Response(404, content=data.fail_body("not found"), headers=JSON)
            return httpx.Response(200, content=data.record_body(days), headers=JSON)
        if len(parts) == 2:
            get = self.account.get_listing if resource == "listings" else self.account.get_reservation
            found = get(int(parts[1])) if parts[1].isdigit() else None
            if found is None:
                return httpx.Response(404, content=data.fail_body("not found"), headers=JSON)
            return httpx.Response(200, content=data.record_body(found), headers=JSON)
        if self.before is not None:
            self.before(request)
        try:
            query = data.parse_query(resource, dict(request.url.params))
        except data.QueryError as exc:
            return httpx.Response(400, content=data.fail_body(str(exc)), headers=JSON)
        run = self.account.query_listings if resource == "listings" else self.account.query_reservations
        records, count = run(query)
        return httpx.Response(200, content=data.list_body(records, count, query), headers=JSON)


def connector(api: Callable[[httpx.Request], httpx.Response], page_size: int = 100) -> HostawayConnector:
    options = ClientOptions(
        partner="hostaway", integration_id="i", base_url=BASE, backoff_initial_s=0.001, backoff_max_s=0.002
    )
    client = PartnerClient(
        httpx.MockTransport(api),
        options,
        throttle=Throttle(),
        metrics=Metrics(),
        log=get_logger(),
        rules=RULES,
    )
    return HostawayConnector(client, page_size=page_size)


class Store:
    """Canonical values by external id; a record replaces an older one, or one of the same
    second that differs (as the store applies them)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[Any, ...]] = {}
        self.fetched = 0

    def apply(self, values: tuple[Any, ...]) -> None:
        self.fetched += 1
        old = self.rows.get(values[0])
        updated_at: datetime = values[1]
        if old is None or old[1] < updated_at or (old[1] == updated_at and old != values):
            self.rows[values[0]] = values


async def sync(
    hostaway: HostawayConnector, resource: str, store: Store, checkpoint: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """One run: every page normalized into ``store``; returns the last checkpoint."""
    normalize = hostaway.normalizer(resource)
    async for page in hostaway.stream(resource, checkpoint, ResourceSettings()):
        for raw in page.records:
            store.apply(normalize(raw))
        checkpoint = page.checkpoint
    return checkpoint
