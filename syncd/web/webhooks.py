"""``POST /webhooks/{partner}/{integration}``: partners telling us a record changed.

Each request goes through, in order (and nothing is written unless it passes them all):

1. route: the integration exists, belongs to ``partner``, and has webhook secrets
   configured (no secret: the route is off) -> else 404;
2. size: the body is read in chunks and refused past ``web.webhook_max_body_bytes``
   -> 413 (a declared ``Content-Length`` over the cap is refused before reading);
3. authenticity, on the raw bytes, in the partner's scheme (``PartnerInfo.webhooks``)
   -> 401 for a bad or missing signature, and for a timestamp outside the tolerance;
4. shape: the partner's event parser -> 400 when the body is not its event; 200 without
   doing anything for an event type we do not act on (partners retry non-2xx);
5. one transaction: the delivery row (unique per integration and delivery id), and when
   it is new a fetch task per named record (``Priority.WEBHOOK``, expiring after the
   resource's interval: by then the periodic sync has covered it) and a NOTIFY that wakes
   the owning shard. A redelivery is answered 200 and queues nothing.

The partner is never called from here for record events: the answer comes in
milliseconds, and the fetch runs on the owning shard's workers. The exception is an event
announcing a new client secret (``Event.new_client_secret``): the partner expects to hear
whether it works, so the switch (tried, committed, verified, rolled back) runs before the
answer: 200 when adopted; 422 when the partner refused it or its verification failed (the
previous secret stays); 503 when the partner could not be asked (try again). Each outcome
counts in ``syncd_webhooks_total`` (``rotated``, ``rotation_refused``, ``rotation_unavailable``).
Secrets never reach logs or answers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from syncd import errors
from syncd.config import DEFAULT_INTERVAL_S, IntegrationSettings
from syncd.connectors.webhooks import Incoming, Rejected, Target, WebhookScheme, body_delivery_id
from syncd.engine.clock import Clock
from syncd.observability.metrics import Metrics
from syncd.store.tasks import Delivery, NewTask, Priority, TaskQueue, fetch_key

PATH = "/webhooks/{partner}/{integration}"
# The metric label of a partner segment that names no known partner (URLs are arbitrary).
OTHER_PARTNER = "other"
# (integration id, new client secret) -> None; raises the partner's error when not adopted.
RotateSecret = Callable[[str, str], Awaitable[None]]


class TooLarge(Exception):
    pass


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it exceeds ``limit`` bytes (never buffered beyond it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class WebhookReceiver:
    def __init__(
        self,
        integrations: Collection[IntegrationSettings],
        schemes: Mapping[str, WebhookScheme | None],
        queue: TaskQueue,
        clock: Clock | None,
        metrics: Metrics,
        log: Any,
        *,
        max_body_bytes: int,
        tolerance_s: float,
        wake_channel: str,
        wall_clock: Callable[[], float] = time.time,
        rotate_secret: RotateSecret | None = None,
    ) -> None:
        self._rotate_secret = rotate_secret
        self._integrations = {i.id: i for i in integrations}
        self._schemes = schemes
        self._queue = queue
        self._clock = clock
        self._metrics = metrics
        self._log = log
        self._max_body = max_body_bytes
        self._tolerance_s = tolerance_s
        self._wake_channel = wake_channel
        self._wall_clock = wall_clock

    async def handle(self, request: Request) -> Response:
        partner = request.path_params["partner"]
        integ = self._integrations.get(request.path_params["integration"])
        scheme = self._schemes.get(partner)
        label = partner if partner in self._schemes else OTHER_PARTNER
        if integ is None or not integ.enabled or integ.partner != partner or scheme is None:
            return self._answer(label, "unknown", 404, "no webhook route here")
        if not integ.webhook_secrets:
            return self._answer(label, "unknown", 404, "no webhook route here")
        log = self._log.bind(integration=integ.id, partner=partner)
        try:
            body = await read_capped(request, self._max_body)
        except TooLarge:
            log.warning("webhook_too_large", limit=self._max_body)
            return self._answer(label, "too_large", 413, "body too large")
        incoming = Incoming(
            dict(request.headers.items()), dict(request.query_params.items()), body, self._wall_clock()
        )
        try:
            delivery_id = scheme.verify(
                incoming, [s.get_secret_value() for s in integ.webhook_secrets], self._tolerance_s
            )
        except Rejected as exc:
            log.warning("webhook_rejected", reason=exc.reason, detail=str(exc))
            return self._answer(label, f"rejected_{exc.reason}", 401, "unauthenticated")
        try:
            event = scheme.parse(body)
        except ValueError as exc:
            log.warning("webhook_bad_request", detail=str(exc)[:200])
            return self._answer(label, "bad_request", 400, str(exc)[:200])
        if event.new_client_secret is not None:
            return await self._rotate(integ.id, event.new_client_secret, label, log)
        tasks = [self._fetch(integ, t) for t in event.targets if self._wanted(integ, t)]
        if not tasks:
            log.debug("webhook_ignored", webhook_event=event.name[:100])
            return self._answer(label, "ignored", 200, "ignored")
        delivery = Delivery(
            integ.id,
            partner,
            delivery_id or body_delivery_id(body),
            event.name[:200],
            body,
            request.headers.get("content-type", "")[:100] or None,
            len(tasks),
        )
        try:
            # The database's clock, read inside the delivery's transaction, unless the engine
            # runs on another (a test's shifted clock): tasks are due on the engine's clock.
            now = await self._clock.now() if self._clock is not None else None
            enqueued = await self._queue.record_delivery(delivery, tasks, now, self._wake_channel)
        except errors.StoreError as exc:
            log.warning("webhook_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
            return self._answer(label, "unavailable", 503, "try again later")
        if enqueued is None:
            log.debug("webhook_duplicate", delivery=delivery.delivery_id[:100])
            return self._answer(label, "duplicate", 200, "duplicate")
        kind = tasks[0].kind
        for outcome, n in (("inserted", enqueued.inserted), ("coalesced", enqueued.coalesced)):
            if n:
                self._metrics.tasks_enqueued.labels(kind, outcome).inc(n)
        if enqueued.folded:
            self._metrics.tasks_enqueued.labels("fetch", "folded").inc(enqueued.folded)
        log.debug("webhook_accepted", webhook_event=delivery.event, tasks=len(tasks))
        return self._answer(label, "accepted", 200, "accepted")

    async def _rotate(self, integration_id: str, secret: str, label: str, log: Any) -> Response:
        if self._rotate_secret is None or not secret:
            return self._answer(label, "bad_request", 400, "no client secret rotation here")
        try:
            await self._rotate_secret(integration_id, secret)
        except (errors.AuthFailed, errors.PartnerRejected) as exc:
            # Refused by the partner, or its verifying call failed: rolled back.
            log.error("client_secret_rotation_refused", error_type=type(exc).__name__, error=str(exc)[:300])
            return self._answer(
                label, "rotation_refused", 422, "the new secret did not work; the previous one stays"
            )
        except (errors.PartnerError, errors.StoreError, errors.CircuitOpen) as exc:
            log.warning("client_secret_rotation_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
            return self._answer(label, "rotation_unavailable", 503, "try again later")
        log.info("client_secret_rotated")
        return self._answer(label, "rotated", 200, "new client secret adopted")

    @staticmethod
    def _wanted(integ: IntegrationSettings, target: Target) -> bool:
        """A record of a resource this integration syncs (every one when none is listed)."""
        if not integ.resources:
            return True
        settings = integ.resources.get(target.resource)
        return settings is not None and settings.enabled

    @staticmethod
    def _fetch(integ: IntegrationSettings, target: Target) -> NewTask:
        if integ.locks is not None:
            # A lock integration syncs nothing: its events say a pushed code settled, and
            # the push executor asks the partner about that code (engine/access.py).
            return NewTask(
                integ.id,
                target.resource,
                "push",
                int(Priority.WEBHOOK),
                f"pushcode:{integ.id}:{target.external_id}",
                {"codes": [target.external_id]},
                expires_in_s=DEFAULT_INTERVAL_S,
            )
        settings = integ.resources.get(target.resource)
        return NewTask(
            integ.id,
            target.resource,
            "fetch",
            int(Priority.WEBHOOK),
            fetch_key(integ.id, target.resource, target.external_id),
            {"ids": [target.external_id]},
            # After one interval the periodic sync has read the record anyway.
            expires_in_s=settings.interval_s if settings is not None else DEFAULT_INTERVAL_S,
        )

    def _answer(self, partner: str, result: str, status: int, message: str) -> Response:
        self._metrics.webhooks.labels(partner, result).inc()
        return JSONResponse({"status": result, "message": message}, status_code=status)
