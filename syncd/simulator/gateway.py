"""The request pipeline every fake partner shares; the partner's quirks come from its profile.

Order per API request: fault plan (its side effects, then an answer that replaces
serving: 5xx, 429, hang, reset) → authentication (the profile's answer when it fails) →
concurrency cap and leaky buckets (429 + ``Retry-After``) → latency → handler → wire
damage of the answer (reset mid-body, truncation, bad JSON, trickle). Faults come first
because a broken network or gateway does not wait for the limiter; a faulted-away request
neither consumes a rate-limit unit nor holds a concurrency slot. The plan is skipped
entirely (one identity check) when none is installed. Every authenticated answer carries
the profile's rate-limit headers.

Token endpoints run fault plan → latency → handler → wire damage: the partner's
credential exchange has its own limits (the profile enforces them) and no account yet.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.simulator import fault_wire, limits
from syncd.simulator.faults import NO_FAULTS, Fault, FaultContext, FaultPlan, Role
from syncd.simulator.profile import Account, Api, Profile, TokenEndpoint
from syncd.simulator.requestlog import ACCOUNT_SCOPE_KEY, FAULT_SCOPE_KEY

D = TypeVar("D")


@dataclass
class Runtime:
    """Knobs the control plane may turn while the server runs."""

    latency_ms: tuple[float, float] | None = None
    faults: FaultPlan = NO_FAULTS
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    hangs: fault_wire.Hangs = field(default_factory=fault_wire.Hangs)


@dataclass(frozen=True, slots=True)
class _Where:
    """What the fault plan learns about a route, fixed when the route is built."""

    partner: str
    path: str  # the template relative to the partner's prefix
    role: Role


class Gateway(Generic[D]):
    """Serves one profile's endpoints under ``/{profile.name}`` over its accounts."""

    def __init__(self, profile: Profile[D], accounts: Mapping[str, Account[D]], runtime: Runtime) -> None:
        self.profile = profile
        self.accounts = accounts
        self.runtime = runtime

    @property
    def prefix(self) -> str:
        return f"/{self.profile.name}"

    def routes(self) -> list[Route]:
        out: list[Route] = []
        for endpoint in self.profile.endpoints():
            if isinstance(endpoint, Api):
                where = _Where(self.profile.name, endpoint.path, "api")
                app = self._api(endpoint, where)
            else:
                where = _Where(self.profile.name, endpoint.path, "token")
                app = self._token(endpoint, where)
            out.append(Route(self.prefix + endpoint.path, app, methods=list(endpoint.methods)))
        return out

    # -- the two pipelines ------------------------------------------------------------------

    def _api(self, endpoint: Api[D], where: _Where) -> Callable[[Request], Awaitable[Response]]:
        handler = endpoint.handler

        async def serve(request: Request) -> Response:
            account = self.profile.authenticate(request, self.accounts)
            if self.runtime.faults is NO_FAULTS:
                return await self._gateway(request, account, handler)
            if account is not None:
                request.scope[ACCOUNT_SCOPE_KEY] = account.id
            fault = await self._consult(request, account, where)
            if fault is None:
                return await self._gateway(request, account, handler)
            if fault.revoke_tokens:
                account = self.profile.authenticate(request, self.accounts)  # applies to this request
            if fault.replaces_answer:
                return self._instead(fault, account)
            response = await self._gateway(request, account, handler)
            if fault.wire is not None:
                return fault_wire.damage(response, fault.wire, self.runtime.hangs)
            return response

        return serve

    def _token(self, endpoint: TokenEndpoint[D], where: _Where) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            account = await endpoint.identify(request, self.accounts)
            if account is not None:
                request.scope[ACCOUNT_SCOPE_KEY] = account.id
            fault = None
            if self.runtime.faults is not NO_FAULTS:
                fault = await self._consult(request, account, where)
                if fault is not None and fault.replaces_answer:
                    return self._instead(fault, None)
            await self._latency()
            response = await endpoint.handler(request, account)
            if fault is not None and fault.wire is not None:
                return fault_wire.damage(response, fault.wire, self.runtime.hangs)
            return response

        return serve

    async def _gateway(
        self,
        request: Request,
        account: Account[D] | None,
        handler: Callable[[Request, Account[D]], Awaitable[Response]],
    ) -> Response:
        if account is None:
            return self.profile.unauthorized(request)
        request.scope[ACCOUNT_SCOPE_KEY] = account.id
        limiter = account.limiter
        if not limiter.enter():
            rate_headers = self.profile.rate_headers(limiter.peek(self.runtime.clock()))
            rate_headers["Retry-After"] = "1"
            return self.profile.error(429, "Too many concurrent requests", rate_headers)
        try:
            decision = limiter.check(self.runtime.clock())
            rate_headers = self.profile.rate_headers(decision)
            if not decision.allowed:
                rate_headers["Retry-After"] = decision.retry_after_header
                return self.profile.error(429, "Rate limit exceeded", rate_headers)
            await self._latency()
            response = await handler(request, account)
            response.headers.update(rate_headers)
            return response
        finally:
            limiter.leave()

    # -- faults -----------------------------------------------------------------------------

    async def _consult(self, request: Request, account: Account[D] | None, where: _Where) -> Fault | None:
        """Ask the plan about this request, apply its side effects, mark the request log."""
        now = self.runtime.clock()
        ctx = FaultContext(
            account.id if account is not None else None,
            request.method,
            where.path,
            request.query_params,
            now,
            where.partner,
            where.role,
        )
        fault = self.runtime.faults.decide(ctx)
        if fault is None:
            return None
        request.scope[FAULT_SCOPE_KEY] = fault.kind
        if account is not None:
            if fault.revoke_tokens:
                self.profile.revoke(account)
            if fault.limits is not None:
                current = account.limiter.settings
                account.limiter.configure(
                    limits.LimitSettings(
                        current.enabled, fault.limits.factor, fault.limits.advertise_documented
                    ),
                    now,
                )
        if fault.delay_s > 0:
            await anyio.sleep(fault.delay_s)
        return fault

    def _instead(self, fault: Fault, account: Account[D] | None) -> Response:
        """The answer that replaces serving (``fault.replaces_answer``), wire damage included."""
        if fault.wire is not None:
            replaced = fault_wire.instead(fault.wire, self.runtime.hangs)
            if replaced is not None:
                return replaced
        headers = dict(fault.headers)
        if account is not None:
            headers.update(self.profile.rate_headers(account.limiter.peek(self.runtime.clock())))
        retry_after = fault.retry_after_header(self.runtime.wall_clock())
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        status = fault.status or 500
        if fault.body is None:
            response = self.profile.error(status, fault.message, headers)
        else:
            response = Response(fault.body, status, headers=headers, media_type="application/json")
        if fault.wire is not None:
            return fault_wire.damage(response, fault.wire, self.runtime.hangs)
        return response

    async def _latency(self) -> None:
        latency = self.runtime.latency_ms
        if latency is not None:
            await anyio.sleep(self.runtime.rng.uniform(*latency) / 1000)
