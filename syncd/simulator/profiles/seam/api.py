"""The Seam API profile: RPC-style ``/access_codes/*`` and ``/devices/list`` below ``/seam``.

What makes Seam Seam (partners.md section 8): a Bearer API key; RPC endpoints that take
POST with a JSON body (or GET with query parameters); ``limit`` + ``page_cursor`` paging
with ``pagination{next_page_cursor, has_next_page, next_page_url}``; per-device limits
(``data.DEVICE_LIMITS``) answered 429; codes that settle asynchronously; webhooks through
Svix (``access_code.set_on_device``, ``access_code.failed_to_set_on_device``).

[assumption] Error bodies are ``{"error": {"type", "message"}, "ok": false}`` (Seam's SDKs
read ``error.type``); ``/access_codes/update`` answers the code as it is now (Seam answers
an action attempt; the daemon reads the code either way).
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from syncd import svix
from syncd.simulator.profile import JSON_MEDIA_TYPE, Account, Api, Profile, WebhookHook, json_response
from syncd.simulator.profiles.seam.data import RateRefused, SeamWorkspace

if TYPE_CHECKING:
    from syncd.simulator.profile import DatasetOptions, Endpoint

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 500
Accounts = Mapping[str, Account[SeamWorkspace]]
Handler = Callable[[Request, Account[SeamWorkspace]], Awaitable[Response]]


class BadRequest(ValueError):
    pass


def _time(value: Any, name: str) -> str | None:
    """An ISO 8601 time as Seam renders it (UTC, milliseconds, ``Z``)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} is not an ISO 8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} needs a UTC offset")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset(cursor: Any) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(str(cursor).encode()).decode()
        if not text.startswith("o:"):
            raise ValueError
        return max(0, int(text[2:]))
    except ValueError:
        raise BadRequest("page_cursor is not one this API issued") from None


class SeamProfile(Profile[SeamWorkspace]):
    name = "seam"

    def endpoints(self) -> Sequence[Endpoint[SeamWorkspace]]:
        both = ("GET", "POST")
        return [
            Api("/devices/list", self._rpc(self._devices), both),
            Api("/access_codes/create", self._rpc(self._create), both),
            Api("/access_codes/update", self._rpc(self._update), both),
            Api("/access_codes/delete", self._rpc(self._delete), both),
            Api("/access_codes/get", self._rpc(self._get), both),
            Api("/access_codes/list", self._rpc(self._list), both),
        ]

    # -- auth and errors ------------------------------------------------------------------

    def authenticate(self, request: Request, accounts: Accounts) -> Account[SeamWorkspace] | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            return None
        return next((a for a in accounts.values() if a.secret == key.strip()), None)

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        kinds = {400: "invalid_input", 401: "unauthorized", 404: "not_found", 429: "rate_limited"}
        body = orjson.dumps(
            {"error": {"type": kinds.get(status, "internal_error"), "message": message}, "ok": False}
        )
        return Response(body, status, headers=dict(headers or {}), media_type=JSON_MEDIA_TYPE)

    def credentials(self, n: int) -> tuple[str, str]:
        return f"seam-acct-{n}", f"seam_sim_key_{n}"

    def config_credentials(self, account_id: str, secret: str) -> dict[str, str]:
        return {"api_key": secret}

    # -- RPC ------------------------------------------------------------------------------

    def _rpc(self, handle: Callable[[dict[str, Any], Request, SeamWorkspace], Response]) -> Handler:
        async def serve(request: Request, account: Account[SeamWorkspace]) -> Response:
            if request.method == "POST":
                raw = await request.body()
                try:
                    params = orjson.loads(raw) if raw.strip() else {}
                except orjson.JSONDecodeError:
                    return self.error(400, "the body is not JSON")
                if not isinstance(params, dict):
                    return self.error(400, "the body must be a JSON object")
            else:
                params = dict(request.query_params)
            workspace = account.data
            workspace.settle(self.runtime.clock())
            try:
                return handle(params, request, workspace)
            except BadRequest as exc:
                return self.error(400, str(exc))
            except RateRefused as exc:
                return self.error(
                    429, "Too many requests for this device", {"Retry-After": f"{exc.retry_after_s:.0f}"}
                )

        return serve

    def _device(self, params: dict[str, Any], workspace: SeamWorkspace) -> str:
        device = params.get("device_id")
        if not isinstance(device, str) or device not in workspace.devices:
            raise BadRequest(f"unknown device_id {device!r}")
        return device

    def _devices(self, params: dict[str, Any], request: Request, workspace: SeamWorkspace) -> Response:
        body = b'{"devices":[%s],"ok":true}' % b",".join(
            orjson.dumps({"device_id": d, "device_type": "august_lock", "properties": {"online": True}})
            for d in workspace.devices
        )
        return json_response(body)

    def _create(self, params: dict[str, Any], request: Request, workspace: SeamWorkspace) -> Response:
        device = self._device(params, workspace)
        starts, ends = _time(params.get("starts_at"), "starts_at"), _time(params.get("ends_at"), "ends_at")
        if (starts is None) != (ends is None) or (starts is not None and ends is not None and ends <= starts):
            raise BadRequest("starts_at and ends_at go together, ends_at after starts_at")
        name = params.get("name")
        workspace.admit(device, "create", self.runtime.clock())
        wall = datetime.fromtimestamp(self.runtime.wall_clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        key = request.headers.get("idempotency-key")
        code = workspace.create(device, name if isinstance(name, str) else None, starts, ends, key,
                                self.runtime.clock(), wall)  # fmt: skip
        return json_response(b'{"access_code":%s,"ok":true}' % code.render())

    def _code(self, params: dict[str, Any], workspace: SeamWorkspace) -> Any:
        ident = params.get("access_code_id")
        return workspace.codes.get(ident) if isinstance(ident, str) else None

    def _update(self, params: dict[str, Any], request: Request, workspace: SeamWorkspace) -> Response:
        code = self._code(params, workspace)
        if code is None:
            return self.error(404, "access code not found")
        starts, ends = _time(params.get("starts_at"), "starts_at"), _time(params.get("ends_at"), "ends_at")
        workspace.admit(code.device_id, "update", self.runtime.clock())
        workspace.update(code, starts, ends, self.runtime.clock())
        return json_response(b'{"access_code":%s,"ok":true}' % code.render())

    def _delete(self, params: dict[str, Any], request: Request, workspace: SeamWorkspace) -> Response:
        code = self._code(params, workspace)
        if code is None:
            return self.error(404, "access code not found")
        workspace.admit(code.device_id, "delete", self.runtime.clock())
        workspace.delete(code.id)
        return json_response(b'{"ok":true}')

    def _get(self, params: dict[str, Any], request: Request, workspace: SeamWorkspace) -> Response:
        code = self._code(params, workspace)
        if code is None:
            return self.error(404, "access code not found")
        return json_response(b'{"access_code":%s,"ok":true}' % code.render())

    def _list(self, params: dict[str, Any], request: Request, workspace: SeamWorkspace) -> Response:
        device = self._device(params, workspace)
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
        except (TypeError, ValueError):
            raise BadRequest("limit must be an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be within 1..{MAX_LIMIT}")
        offset = _offset(params.get("page_cursor"))
        codes = workspace.listed(device)
        page = codes[offset : offset + limit]
        more = offset + limit < len(codes)
        cursor = _cursor(offset + limit) if more else None
        pagination = {
            "next_page_cursor": cursor,
            "has_next_page": more,
            "next_page_url": f"{request.url.path}?device_id={device}&page_cursor={cursor}" if more else None,
        }
        body = b'{"access_codes":[%s],"pagination":%s,"ok":true}' % (
            b",".join(c.render() for c in page),
            orjson.dumps(pagination),
        )
        return json_response(body)

    # -- the dataset ----------------------------------------------------------------------

    def dataset(self, seed: int, size: int, options: DatasetOptions) -> SeamWorkspace:
        extra = options.extra
        settle = extra.get("settle_s", 1.0)
        failing = extra.get("failing_devices", ())
        return SeamWorkspace(
            seed,
            size,
            settle_s=float(settle) if isinstance(settle, int | float) else 1.0,
            failing_devices=frozenset(str(d) for d in failing)
            if isinstance(failing, list | tuple)
            else frozenset(),
            honour_idempotency=bool(extra.get("honour_idempotency", True)),
        )

    def describe(self, data: SeamWorkspace) -> dict[str, object]:
        return {
            "seed": data.seed,
            "devices": len(data.devices),
            "codes": len(data.codes),
            "creations": sum(data.creations_by_key.values()),
            "max_creations_per_key": max(data.creations_by_key.values(), default=0),
            "codes_per_device": dict(sorted(Counter(c.device_id for c in data.codes.values()).items())),
            "max_codes_per_reservation": max(data.active_by_name().values(), default=0),
        }

    def mutate(self, data: SeamWorkspace, count: int, seed: int) -> dict[str, object]:
        """Seam's codes change only through its API; a mutation settles what is due."""
        data.settle(self.runtime.clock())
        return {"codes": len(data.codes)}

    def pending_notifications(self, data: SeamWorkspace) -> list[bytes]:
        return data.take_events(self.runtime.clock())

    def webhook_request(
        self, hook: WebhookHook, body: bytes, message_id: str, now: float
    ) -> tuple[str, dict[str, str]]:
        return hook.url, {
            "content-type": JSON_MEDIA_TYPE,
            **svix.headers(hook.secrets, message_id, int(now), body),
        }

    def truth(self, data: SeamWorkspace, kind: str | None) -> Iterable[bytes]:
        if kind not in (None, "access_codes"):
            raise ValueError("kind must be access_codes")
        data.settle(self.runtime.clock())
        return data.truth()
