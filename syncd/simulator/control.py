"""The ``/_sim/`` control plane: drive and inspect the simulator from tests and benchmarks.

Not part of any partner API, and never counted in the request log. Endpoints:

- ``GET  /_sim/health``                     liveness, partners and account list
- ``GET  /_sim/accounts``                   partner, credentials and sizes of every account
- ``POST /_sim/{partner}/{account}/mutate`` ``{"count":300,"seed":1}`` → mutation summary
- ``GET  /_sim/{partner}/{account}/truth``  NDJSON ground truth, streamed (``?kind=…&version=…``)
- ``GET  /_sim/requests``                   counters, plus ``?last=K&path=/{partner}/…&account=…``
- ``POST /_sim/requests/reset``             forget counters and entries
- ``POST /_sim/limits``                     ``{"factor":0.5,"enabled":true,"advertise_documented":true}``
- ``POST /_sim/latency``                    ``{"min_ms":50,"max_ms":200}`` or ``{}`` to switch off
- ``POST /_sim/faults``                     a fault spec ``{"seed":7,"rules":[...]}`` (see
  ``fault_spec``) or a preset ``{"preset":"storm:60","seed":7}``; replaces the plan and
  restarts its clock and counters. Answers the normalised spec.
- ``POST /_sim/{partner}/{account}/webhooks`` ``{"url":…,"secrets":[…],"duplicate":0.1,
  "reorder":true,"delay_ms":[0,500]}``: send the account's change notifications there
  (``syncd.simulator.webhooks``); ``DELETE`` stops them
- ``GET  /_sim/webhooks``                   the sender's counters (queued, attempts, delivered…)
- ``GET  /_sim/faults``                     the installed spec, its elapsed time and counters
- ``DELETE /_sim/faults``                   back to no faults

Silent limit tightening mid-run: ``POST /_sim/limits {"factor":0.5,"advertise_documented":true}``
now, or a ``tighten_limits`` fault rule at a chosen time / request count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import anyio.lowlevel
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from syncd.simulator import fault_presets, fault_spec
from syncd.simulator.fault_plan import SeededFaultPlan
from syncd.simulator.faults import NO_FAULTS
from syncd.simulator.profile import Account, WebhookHook
from syncd.simulator.webhooks import DeliveryFaults, Subscription

if TYPE_CHECKING:
    from syncd.simulator.server import Simulator

PREFIX = "/_sim"
_JSON = "application/json"
_TRUTH_CHUNK = 512


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type=_JSON)


async def _body(request: Request) -> dict[str, object]:
    raw = await request.body()
    data = orjson.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return cast("dict[str, object]", data)


def _number(data: dict[str, object], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key!r} must be a number")
    return float(value)


def subscription_from_json(body: dict[str, object]) -> Subscription:
    url, secrets = body.get("url"), body.get("secrets")
    if not isinstance(url, str) or not isinstance(secrets, list) or not secrets:
        raise ValueError("'url' (a string) and 'secrets' (a non-empty list) are required")
    if not all(isinstance(s, str) and s for s in secrets):
        raise ValueError("'secrets' must be non-empty strings")
    delay = body.get("delay_ms", [0, 0])
    if not isinstance(delay, list) or len(delay) != 2 or not all(isinstance(d, int | float) for d in delay):
        raise ValueError("'delay_ms' must be [low, high]")
    reorder = body.get("reorder", False)
    if not isinstance(reorder, bool):
        raise ValueError("'reorder' must be a boolean")
    faults = DeliveryFaults(
        duplicate=_number(body, "duplicate") or 0.0,
        reorder=reorder,
        delay_s=(float(delay[0]) / 1000, float(delay[1]) / 1000),
    )
    return Subscription(WebhookHook(url, tuple(cast("list[str]", secrets))), faults)


def routes(sim: Simulator) -> list[Route]:
    def find(request: Request) -> Account[Any] | None:
        account = sim.accounts.get(request.path_params["account"])
        return account if account is not None and account.partner == request.path_params["partner"] else None

    async def health(request: Request) -> Response:
        return _json({"status": "ok", "partners": list(sim.profiles), "accounts": sorted(sim.accounts)})

    async def accounts(request: Request) -> Response:
        return _json(
            [
                {"partner": a.partner, "id": a.id, "secret": a.secret}
                | sim.profiles[a.partner].describe(a.data)
                for a in sim.accounts.values()
            ]
        )

    async def mutate(request: Request) -> Response:
        account = find(request)
        if account is None:
            return _json({"error": "unknown account"}, 404)
        try:
            body = await _body(request)
            count, seed = _number(body, "count"), _number(body, "seed")
            if count is not None and count < 0:
                raise ValueError("'count' must be >= 0")
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(sim.mutate(account.id, 1 if count is None else int(count), int(seed or 0)))

    async def truth(request: Request) -> Response:
        account = find(request)
        if account is None:
            return _json({"error": "unknown account"}, 404)
        try:
            params = request.query_params
            records = sim.profiles[account.partner].version_truth(
                account.data, params.get("kind"), params.get("version")
            )
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)

        async def lines() -> AsyncIterator[bytes]:
            chunk: list[bytes] = []
            for line in records:
                chunk.append(line)
                if len(chunk) >= _TRUTH_CHUNK:
                    yield b"".join(chunk)
                    chunk.clear()
                    await anyio.lowlevel.checkpoint()  # a million lines must not starve the API routes
            if chunk:
                yield b"".join(chunk)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def requests(request: Request) -> Response:
        try:
            last = int(request.query_params.get("last", "0"))
        except ValueError:
            return _json({"error": "'last' must be an integer"}, 400)
        params = request.query_params
        return _json(
            sim.request_log.to_json(path=params.get("path"), account=params.get("account"), last=last)
        )

    async def reset_requests(request: Request) -> Response:
        sim.request_log.reset()
        return _json({"status": "ok"})

    async def set_limits(request: Request) -> Response:
        try:
            body = await _body(request)
            enabled = body.get("enabled")
            silent = body.get("advertise_documented")
            if not isinstance(enabled, bool | None) or not isinstance(silent, bool | None):
                raise ValueError("'enabled' and 'advertise_documented' must be booleans")
            settings = sim.set_limits(
                enabled=enabled, factor=_number(body, "factor"), advertise_documented=silent
            )
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(
            {
                "enabled": settings.enabled,
                "factor": settings.factor,
                "advertise_documented": settings.advertise_documented,
            }
        )

    async def set_latency(request: Request) -> Response:
        try:
            body = await _body(request)
            low, high = _number(body, "min_ms"), _number(body, "max_ms")
            sim.set_latency(None if low is None else (low, high if high is not None else low))
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"latency_ms": sim.runtime.latency_ms})

    async def set_faults(request: Request) -> Response:
        try:
            body = await _body(request)
            preset = body.pop("preset", None)
            if preset is not None:
                seed = body.pop("seed", 0)
                if not isinstance(preset, str) or isinstance(seed, bool) or not isinstance(seed, int) or body:
                    raise ValueError("a preset takes only 'preset' (a string) and 'seed' (an integer)")
                spec = fault_presets.from_preset(preset, seed)
            else:
                spec = fault_spec.spec_from_json(body)
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        sim.set_faults(spec)
        return _json(spec.to_json())

    async def get_faults(request: Request) -> Response:
        plan = sim.runtime.faults
        if isinstance(plan, SeededFaultPlan):
            return _json(plan.to_json(sim.runtime.clock()))
        return _json({"rules": [], "custom": plan is not NO_FAULTS})

    async def clear_faults(request: Request) -> Response:
        sim.set_faults(None)
        return _json({"status": "ok"})

    async def subscribe(request: Request) -> Response:
        account = find(request)
        if account is None:
            return _json({"error": "unknown account"}, 404)
        if request.method == "DELETE":
            sim.webhooks.subscribe(account.id, None)
            return _json({"status": "ok"})
        try:
            sim.webhooks.subscribe(account.id, subscription_from_json(await _body(request)))
        except (ValueError, NotImplementedError, orjson.JSONDecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"status": "ok"})

    async def webhook_stats(request: Request) -> Response:
        return _json(sim.webhooks.stats.to_json())

    return [
        Route(f"{PREFIX}/webhooks", webhook_stats, methods=["GET"]),
        Route(f"{PREFIX}/{{partner}}/{{account}}/webhooks", subscribe, methods=["POST", "DELETE"]),
        Route(f"{PREFIX}/faults", set_faults, methods=["POST"]),
        Route(f"{PREFIX}/faults", get_faults, methods=["GET"]),
        Route(f"{PREFIX}/faults", clear_faults, methods=["DELETE"]),
        Route(f"{PREFIX}/health", health, methods=["GET"]),
        Route(f"{PREFIX}/accounts", accounts, methods=["GET"]),
        Route(f"{PREFIX}/requests", requests, methods=["GET"]),
        Route(f"{PREFIX}/requests/reset", reset_requests, methods=["POST"]),
        Route(f"{PREFIX}/limits", set_limits, methods=["POST"]),
        Route(f"{PREFIX}/latency", set_latency, methods=["POST"]),
        Route(f"{PREFIX}/{{partner}}/{{account}}/mutate", mutate, methods=["POST"]),
        Route(f"{PREFIX}/{{partner}}/{{account}}/truth", truth, methods=["GET"]),
    ]
