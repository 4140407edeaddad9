"""Starlette app: liveness, readiness (dependency pings), Prometheus metrics, status.

``/healthz`` only says the event loop answers (and how late it runs); ``/readyz`` pings
every registered dependency (the database, the worker loop) and answers 503 with the
failing ones, so Kubernetes stops routing to a shard that cannot do its job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.observability.metrics import Metrics
from syncd.web import status_page

Ping = Callable[[], Awaitable[None]]
PING_TIMEOUT_S = 3.0


@dataclass
class WebContext:
    metrics: Metrics
    pings: Mapping[str, Ping] = field(default_factory=dict)
    liveness: Callable[[], dict[str, Any]] = dict
    status: Callable[[], Awaitable[dict[str, Any]]] | None = None
    # Facts for /readyz's body that do not decide readiness (e.g. open breakers); the key
    # "detail" appears only when there is something to report.
    detail: Callable[[], dict[str, Any]] | None = None
    # More routes (``syncd.web.admin.mount`` when an admin token is configured).
    routes: Sequence[BaseRoute] = ()


async def _run_pings(pings: Mapping[str, Ping]) -> tuple[list[str], dict[str, str]]:
    ok: list[str] = []
    failing: dict[str, str] = {}

    async def one(name: str, ping: Ping) -> None:
        try:
            with anyio.fail_after(PING_TIMEOUT_S):
                await ping()
        except Exception as exc:  # a readiness probe reports every failure, whatever its type
            failing[name] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            ok.append(name)

    async with anyio.create_task_group() as tg:
        for name, ping in pings.items():
            tg.start_soon(one, name, ping)
    return sorted(ok), failing


def create_app(ctx: WebContext) -> Starlette:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", **ctx.liveness()})

    async def readyz(_: Request) -> Response:
        ok, failing = await _run_pings(ctx.pings)
        body: dict[str, Any] = {"ok": ok, "failing": failing}
        detail = ctx.detail() if ctx.detail is not None else None
        if detail:
            body["detail"] = detail
        return JSONResponse(body, status_code=503 if failing else 200)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def status(request: Request) -> Response:
        body = await ctx.status() if ctx.status is not None else {}
        accept = request.headers.get("accept", "")
        if "text/html" in accept and "application/json" not in accept:
            return HTMLResponse(status_page.render(body))
        return JSONResponse(body)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/status", status),
            *ctx.routes,
        ]
    )
