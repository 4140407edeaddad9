"""Starlette routes of the Guesty Open API profile: ``/oauth2/token`` and ``/v1/...``.

The shell only does HTTP: it authenticates, applies the account's rate limits, consults
the fault plan, sleeps the configured latency, and hands validated queries to the pure
dataset (``guesty_data``) and envelope (``guesty_query``) code.

Order per API request, as a gateway would: Bearer token (401) → concurrency cap and
leaky buckets (429 + ``Retry-After``) → fault plan → latency → handler. Every
authenticated response carries the ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.simulator import guesty_auth, guesty_query, limits
from syncd.simulator.faults import NO_FAULTS, FaultContext, FaultPlan
from syncd.simulator.guesty_data import GuestyAccount, QueryResult
from syncd.simulator.requestlog import ACCOUNT_SCOPE_KEY

TOKEN_PATH = "/oauth2/token"
API_PREFIX = "/v1"
_JSON = "application/json"


@dataclass
class GuestyTenant:
    """One Guesty account as the gateway sees it: credentials, data and its own limits."""

    client_id: str
    client_secret: str
    data: GuestyAccount
    limiter: limits.RateLimiter


@dataclass
class Runtime:
    """Knobs the control plane may turn while the server runs."""

    latency_ms: tuple[float, float] | None = None
    faults: FaultPlan = NO_FAULTS
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=lambda: random.Random(0))


def error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status, headers=dict(headers or {}), media_type=_JSON)


class GuestyApi:
    """Request handlers over a set of tenants keyed by ``client_id``."""

    def __init__(
        self, tenants: Mapping[str, GuestyTenant], tokens: guesty_auth.TokenIssuer, runtime: Runtime
    ) -> None:
        self.tenants = tenants
        self.tokens = tokens
        self.runtime = runtime

    def routes(self) -> list[Route]:
        return [
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Route(f"{API_PREFIX}/listings", self.list_listings, methods=["GET"]),
            Route(f"{API_PREFIX}/listings/{{id}}", self.get_listing, methods=["GET"]),
            Route(f"{API_PREFIX}/reservations", self.list_reservations, methods=["GET"]),
            Route(f"{API_PREFIX}/reservations/{{id}}", self.get_reservation, methods=["GET"]),
        ]

    # -- auth -------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        if (
            request.headers.get("content-type", "").split(";")[0].strip()
            != "application/x-www-form-urlencoded"
        ):
            return Response(b'{"error":"invalid_request"}', 400, media_type=_JSON)
        form = dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))
        tenant = self.tenants.get(form.get("client_id", ""))
        if tenant is not None:
            request.scope[ACCOUNT_SCOPE_KEY] = tenant.client_id
        blocked = await self._fault(request, tenant.client_id if tenant else None)
        if blocked is not None:
            return blocked
        await self._latency()
        if form.get("grant_type") != "client_credentials":
            return Response(b'{"error":"unsupported_grant_type"}', 400, media_type=_JSON)
        if form.get("scope") != "open-api":
            return Response(b'{"error":"invalid_scope"}', 400, media_type=_JSON)
        if tenant is None or form.get("client_secret") != tenant.client_secret:
            return Response(b'{"error":"invalid_client"}', 401, media_type=_JSON)
        issued = self.tokens.issue(tenant.client_id, self.runtime.wall_clock())
        if issued is None:
            return Response(
                b'{"error":"too_many_requests","error_description":"token limit reached"}',
                429,
                headers={"Retry-After": str(guesty_auth.CAP_RETRY_AFTER_S)},
                media_type=_JSON,
            )
        return Response(orjson.dumps(issued.to_json()), media_type=_JSON)

    def _authenticate(self, request: Request) -> GuestyTenant | None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            return None
        client_id = self.tokens.resolve(credentials.strip(), self.runtime.wall_clock())
        return None if client_id is None else self.tenants.get(client_id)

    # -- the gateway pipeline ---------------------------------------------------------

    async def _fault(self, request: Request, account: str | None) -> Response | None:
        route = request.scope.get("route")
        ctx = FaultContext(
            account,
            request.method,
            getattr(route, "path", request.url.path),
            request.query_params,
            self.runtime.clock(),
        )
        fault = self.runtime.faults.decide(ctx)
        if fault is None:
            return None
        if fault.delay_s > 0:
            await anyio.sleep(fault.delay_s)
        if fault.status is None:
            return None
        return Response(fault.body, fault.status, headers=dict(fault.headers), media_type=_JSON)

    async def _latency(self) -> None:
        latency = self.runtime.latency_ms
        if latency is not None:
            await anyio.sleep(self.runtime.rng.uniform(*latency) / 1000)

    async def _serve(self, request: Request, handler: Callable[[GuestyAccount], Response]) -> Response:
        tenant = self._authenticate(request)
        if tenant is None:
            return error(401, "UNAUTHORIZED", "Missing, unknown or expired access token")
        request.scope[ACCOUNT_SCOPE_KEY] = tenant.client_id
        limiter = tenant.limiter
        if not limiter.enter():
            rate_headers = limits.headers(limiter.peek(self.runtime.clock()), limiter.tiers)
            rate_headers["Retry-After"] = "1"
            return error(429, "TOO_MANY_REQUESTS", "Too many concurrent requests", rate_headers)
        try:
            decision = limiter.check(self.runtime.clock())
            rate_headers = limits.headers(decision, limiter.tiers)
            if not decision.allowed:
                rate_headers["Retry-After"] = decision.retry_after_header
                return error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded", rate_headers)
            blocked = await self._fault(request, tenant.client_id)
            if blocked is None:
                await self._latency()
            response = handler(tenant.data) if blocked is None else blocked
            response.headers.update(rate_headers)
            return response
        finally:
            limiter.leave()

    # -- endpoints --------------------------------------------------------------------

    async def list_listings(self, request: Request) -> Response:
        return await self._serve(request, lambda data: _page(request, data.query_listings))

    async def list_reservations(self, request: Request) -> Response:
        return await self._serve(request, lambda data: _page(request, data.query_reservations))

    async def get_listing(self, request: Request) -> Response:
        ident = request.path_params["id"]
        return await self._serve(request, lambda data: _one(request, data.get_listing(ident), "Listing"))

    async def get_reservation(self, request: Request) -> Response:
        ident = request.path_params["id"]
        return await self._serve(
            request, lambda data: _one(request, data.get_reservation(ident), "Reservation")
        )


def _page(request: Request, run: Callable[[guesty_query.ListQuery], QueryResult]) -> Response:
    try:
        query = guesty_query.parse_list_query(request.query_params)
    except guesty_query.QueryError as exc:
        return error(400, "BAD_REQUEST", str(exc))
    result = run(query)
    return Response(guesty_query.render_page(result.records, result.count, query), media_type=_JSON)


def _one(request: Request, record: bytes | None, what: str) -> Response:
    if record is None:
        return error(404, "NOT_FOUND", f"{what} not found")
    fields = request.query_params.get("fields", "").replace(",", " ").split()
    return Response(guesty_query.project(record, fields) if fields else record, media_type=_JSON)
