"""``/admin/*``: the operator commands over HTTP, behind a bearer token.

    POST /admin/sync-now      {"integration", "resource"?}   -> 202, like `syncd sync-now`
    GET  /admin/dlq           ?integration=&resource=&limit=&payload=   like `syncd dlq list`
    POST /admin/dlq/replay    {"integration", "resource"?, "ids"?, "limit"?}  like `syncd dlq replay`
    GET  /admin/tasks         ?state=&integration=&limit=    like `syncd tasks`

Mounted only when ``web.admin_token`` is set, so without one every ``/admin/*`` is a 404:
an admin surface nobody configured cannot be guessed into. A missing or wrong token is a
401 with ``WWW-Authenticate: Bearer``, compared in constant time and never logged. Each
route validates its input (400, nothing written), then calls the function the CLI calls
(``syncd.admin``) and answers with the rows the CLI prints as ``--json`` lines.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from syncd import admin, errors
from syncd.config import Settings
from syncd.connectors.base import Connector
from syncd.store.postgres import Store

MAX_LIMIT = 10_000
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class AdminContext:
    token: SecretStr
    store: Store
    settings: Settings
    # This daemon's drivers (its shard's integrations): replay calls their partners.
    connectors: Mapping[str, Connector]
    log: Any
    # Claim at once what sync-now queued (the NOTIFY wakes the other daemons).
    wake: Callable[[], None]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SyncNowBody(_Body):
    integration: str = Field(min_length=1)
    resource: str | None = None


class ReplayBody(_Body):
    integration: str = Field(min_length=1)
    resource: str | None = None
    ids: tuple[str, ...] = ()
    limit: int = Field(default=10_000, ge=1, le=MAX_LIMIT)


class DlqQuery(_Body):
    integration: str | None = None
    resource: str | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    payload: bool = False


class TasksQuery(_Body):
    state: Literal["pending", "running", "done", "failed", "skipped", "expired", "dead", "lost"] | None = None
    integration: str | None = None
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)


M = TypeVar("M", bound=_Body)


class _BadRequest(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems


def _json(body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    # The CLI's serializer: an HTTP answer and a --json line carry the same values.
    return Response(admin.dumps(body), status_code, headers, media_type="application/json")


def _error(status_code: int, message: str, **extra: Any) -> Response:
    return _json({"error": message, **extra}, status_code)


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]


async def _body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise _BadRequest([f"body: over {MAX_BODY_BYTES} bytes"])
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise _BadRequest(_problems(exc)) from None


def _query(request: Request, model: type[M]) -> M:
    params = request.query_params
    if any(len(params.getlist(key)) > 1 for key in params):
        raise _BadRequest(["query: each parameter at most once"])
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        raise _BadRequest(_problems(exc)) from None


class BearerAuth:
    """Lets a request through only with ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: SecretStr, log: Any) -> None:
        self._app = app
        self._token = token.get_secret_value().encode()
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(Headers(scope=scope).get("authorization")):
            client = scope.get("client")
            self._log.warning(
                "admin_unauthorized", path=scope.get("path"), client=client[0] if client else None
            )
            response = _error(401, "a valid bearer token is required")
            response.headers["WWW-Authenticate"] = 'Bearer realm="syncd-admin"'
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _authorized(self, header: str | None) -> bool:
        scheme, _, given = (header or "").partition(" ")
        # compare_digest: the time taken does not tell how much of a guess was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)


def mount(ctx: AdminContext) -> Mount:
    """The /admin routes, behind ``ctx.token``."""

    async def sync_now(request: Request) -> Response:
        body = await _body(request, SyncNowBody)
        (integration_id,) = await admin.select(ctx.store, ctx.settings, body.integration)
        resources = await admin.queue_sync(ctx.store, integration_id, body.resource)
        if not resources:
            which = f" {body.resource!r}" if body.resource else ""
            return _error(404, f"no enabled resource{which} of {integration_id!r}")
        ctx.wake()
        ctx.log.info("admin_sync_now", integration=integration_id, resources=resources)
        return _json({"integration": integration_id, "queued": resources, "priority": "user"}, 202)

    async def dlq(request: Request) -> Response:
        q = _query(request, DlqQuery)
        ids = await admin.select(ctx.store, ctx.settings, q.integration)
        rows = await admin.dead_letter_rows(ctx.store, ids, q.resource, q.limit, q.payload)
        return _json({"dead_letters": rows})

    async def dlq_replay(request: Request) -> Response:
        body = await _body(request, ReplayBody)
        (integration_id,) = await admin.select(ctx.store, ctx.settings, body.integration)
        if integration_id not in ctx.connectors:
            return _error(404, f"{integration_id!r} is not synced by this daemon (ask its shard)")
        results = await admin.replay_letters(
            ctx.store, ctx.connectors, [integration_id], body.resource, body.ids, body.limit, ctx.log
        )
        busy = any(r.busy for r in results)
        # 409: a sync run holds the records' lock; nothing was replayed there, try again.
        return _json({"results": [r.to_json() for r in results]}, 409 if busy else 200)

    async def tasks(request: Request) -> Response:
        q = _query(request, TasksQuery)
        ids = await admin.select(ctx.store, ctx.settings, q.integration)
        return _json({"tasks": await admin.task_rows(ctx.store, ids, q.state, q.limit)})

    def guarded(endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                response: Response = await endpoint(request)
            except _BadRequest as exc:
                return _error(400, "bad request", problems=exc.problems)
            except admin.UnknownIntegration as exc:
                return _error(404, f"unknown integration {exc.integration!r}")
            except errors.StoreError as exc:
                # The database is away (a restart, a failover): say so, and retry later.
                ctx.log.warning("admin_store_error", path=request.url.path, error=str(exc))
                return _error(503, "the database is unavailable; try again")
            return response

        return handle

    router = Router(
        routes=[
            Route("/sync-now", guarded(sync_now), methods=["POST"]),
            Route("/dlq", guarded(dlq), methods=["GET"]),
            Route("/dlq/replay", guarded(dlq_replay), methods=["POST"]),
            Route("/tasks", guarded(tasks), methods=["GET"]),
        ]
    )
    return Mount("/admin", app=BearerAuth(router, ctx.token, ctx.log))
