"""Starlette routes of the Guesty Open API profile: ``/oauth2/token`` and ``/v1/...``.

The shell only does HTTP: it authenticates, applies the account's rate limits, consults
the fault plan, sleeps the configured latency, and hands validated queries to the pure
dataset (``guesty_data``) and envelope (``guesty_query``) code.

Order per API request: fault plan (its side effects, then an answer that replaces
serving: 5xx, 429, hang, reset) → Bearer token (401) → concurrency cap and leaky buckets
(429 + ``Retry-After``) → latency → handler → wire damage of the answer (reset mid-body,
truncation, bad JSON, trickle). Faults come first because a broken network or gateway
does not wait for the limiter; a faulted-away request neither consumes a rate-limit unit
nor holds a concurrency slot. The plan is skipped entirely (one identity check) when
none is installed. Every authenticated response carries the ``X-RateLimit-*`` headers.
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

from syncd.simulator import fault_wire, guesty_auth, guesty_query, limits
from syncd.simulator.faults import NO_FAULTS, Fault, FaultContext, FaultPlan
from syncd.simulator.guesty_data import GuestyAccount, QueryResult
from syncd.simulator.requestlog import ACCOUNT_SCOPE_KEY, FAULT_SCOPE_KEY

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
    hangs: fault_wire.Hangs = field(default_factory=fault_wire.Hangs)


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
        fault = None
        if self.runtime.faults is not NO_FAULTS:
            fault = await self._consult(request, tenant)
            if fault is not None and fault.replaces_answer:
                return self._instead(fault, None)
        response = await self._issue(request, form, tenant)
        if fault is not None and fault.wire is not None:
            return fault_wire.damage(response, fault.wire, self.runtime.hangs)
        return response

    async def _issue(
        self, request: Request, form: Mapping[str, str], tenant: GuestyTenant | None
    ) -> Response:
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

    async def _consult(self, request: Request, tenant: GuestyTenant | None) -> Fault | None:
        """Ask the plan about this request, apply its side effects, mark the request log."""
        route = request.scope.get("route")
        now = self.runtime.clock()
        account = tenant.client_id if tenant is not None else None
        ctx = FaultContext(
            account, request.method, getattr(route, "path", request.url.path), request.query_params, now
        )
        fault = self.runtime.faults.decide(ctx)
        if fault is None:
            return None
        request.scope[FAULT_SCOPE_KEY] = fault.kind
        if tenant is not None:
            if fault.revoke_tokens:
                self.tokens.revoke(tenant.client_id)
            if fault.limits is not None:
                current = tenant.limiter.settings
                tenant.limiter.configure(
                    limits.LimitSettings(
                        current.enabled, fault.limits.factor, fault.limits.advertise_documented
                    ),
                    now,
                )
        if fault.delay_s > 0:
            await anyio.sleep(fault.delay_s)
        return fault

    def _instead(self, fault: Fault, tenant: GuestyTenant | None) -> Response:
        """The answer that replaces serving (``fault.replaces_answer``), wire damage included."""
        if fault.wire is not None:
            replaced = fault_wire.instead(fault.wire, self.runtime.hangs)
            if replaced is not None:
                return replaced
        headers = dict(fault.headers)
        if tenant is not None:
            headers.update(limits.headers(tenant.limiter.peek(self.runtime.clock()), tenant.limiter.tiers))
        retry_after = fault.retry_after_header(self.runtime.wall_clock())
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        response = Response(fault.body, fault.status or 500, headers=headers, media_type=_JSON)
        if fault.wire is not None:
            return fault_wire.damage(response, fault.wire, self.runtime.hangs)
        return response

    async def _latency(self) -> None:
        latency = self.runtime.latency_ms
        if latency is not None:
            await anyio.sleep(self.runtime.rng.uniform(*latency) / 1000)

    async def _serve(self, request: Request, handler: Callable[[GuestyAccount], Response]) -> Response:
        tenant = self._authenticate(request)
        if self.runtime.faults is NO_FAULTS:
            return await self._gateway(request, tenant, handler)
        if tenant is not None:
            request.scope[ACCOUNT_SCOPE_KEY] = tenant.client_id
        fault = await self._consult(request, tenant)
        if fault is None:
            return await self._gateway(request, tenant, handler)
        if fault.revoke_tokens:
            tenant = self._authenticate(request)  # the revocation applies to this very request
        if fault.replaces_answer:
            return self._instead(fault, tenant)
        response = await self._gateway(request, tenant, handler)
        if fault.wire is not None:
            return fault_wire.damage(response, fault.wire, self.runtime.hangs)
        return response

    async def _gateway(
        self, request: Request, tenant: GuestyTenant | None, handler: Callable[[GuestyAccount], Response]
    ) -> Response:
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
            await self._latency()
            response = handler(tenant.data)
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
