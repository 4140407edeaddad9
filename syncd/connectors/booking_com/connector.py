"""The Booking.com driver: the OTA reservation queues, drained and acknowledged after commit.

One run drains the new-reservations queue, then the modifications queue. Each poll is a
GET whose reservations become one page that ``awaits_commit``: the pipeline commits it
(rows, dead letters, checkpoint) in one transaction and then calls ``committed``, which
POSTs the acknowledgement; only then does the stream poll again, after the documented
pause. So a reservation is acknowledged only once it is durable, and a crash between
the commit and the acknowledgement means the partner delivers it again: it lands on the
same row (one row per reservation id), and the store's last-write-wins on the
reservation's own ``LastModifyDateTime`` makes the older or equal copy change nothing.

Modifications and cancellations are the same reservation again: the same id, a newer
stamp, a new ``ResStatus`` (``Cancel``: canceled). A reservation modified before it was
acknowledged comes back through the new queue with its newest state, which is the same
rule. The queues' order does not matter for the same reason.

A reservation that fails to normalize is a dead letter, committed with its neighbours,
and is acknowledged with an error (the partner's documented error acknowledgement), not
left unacknowledged: left, it would come back on every poll, forever, and within 30 min
the partner e-mails it to the property anyway. Nothing is lost: the dead letter keeps
its exact bytes and the property has the partner's copy. One without a readable id
cannot be acknowledged at all; a poll that brings nothing acknowledgeable ends the run
(it would bring the same again).

Pace (partners.md): a queue found empty is not polled again for ``empty_poll_s`` (20 s):
a run that comes sooner skips it rather than hold a worker while it waits (the schedule
brings the next run); a poll follows an acknowledgement by ``ack_pause_s`` (5 s), slept
within the run; the partner's ``max_concurrency`` of 1 keeps every call of an
integration sequential.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors.base import Normalizer, Page, PartnerInfo
from syncd.connectors.booking_com import PARTNER, adapter, wire
from syncd.http.auth import ClientCredentials
from syncd.http.client import PartnerClient
from syncd.store.types import RawRecord

EMPTY_POLL_S = 20.0
ACK_PAUSE_S = 5.0
RESOURCE = "reservations"
DEAD_LETTER_ACK = "reservation could not be processed; kept for an operator"
_RAW_ID = re.compile(rb'ResID_Value\s*=\s*["\']\s*(\d{1,30})\s*["\']')


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    path: str
    answer: str  # the acknowledgement's root element


QUEUES = (
    Queue("new", "/ota/OTA_HotelResNotif", "OTA_HotelResNotifRS"),
    Queue("modified", "/ota/OTA_HotelResModifyNotif", "OTA_HotelResModifyNotifRS"),
)


@dataclass(frozen=True, slots=True)
class Pace:
    empty_poll_s: float = EMPTY_POLL_S
    ack_pause_s: float = ACK_PAUSE_S

    @classmethod
    def of(cls, empty_poll_s: float | None, ack_pause_s: float | None) -> Pace:
        return cls(
            EMPTY_POLL_S if empty_poll_s is None else empty_poll_s,
            ACK_PAUSE_S if ack_pause_s is None else ack_pause_s,
        )


@dataclass
class _Polled:
    """One poll's reservations awaiting their commit, then their acknowledgement."""

    queue: Queue
    ok: list[str]
    failed: list[str]
    stamp: str  # the polled message's TimeStamp, echoed by the acknowledgement
    acked: anyio.Event = field(default_factory=anyio.Event)


def _no_access(exc: errors.PartnerRejected) -> errors.PartnerRejected:
    return errors.PartnerRejected(
        "Booking.com answered 403: this machine account has no access to the property "
        "(a wrong hotel id, or the property disconnected the provider); not a token problem",
        status=403,
    )


class BookingConnector:
    info: PartnerInfo = PARTNER

    def __init__(
        self,
        client: PartnerClient,
        pace: Pace = Pace(),
        *,
        log: Any = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._client = client
        self._pace = pace
        self._log = log
        self._clock, self._sleep = clock, sleep
        self._serial = itertools.count(1)
        self._polled: dict[int, _Polled] = {}
        self._empty_at: dict[str, float] = {}  # queue -> when a poll last found it empty
        self._acked_at: float | None = None

    # -- the contract -----------------------------------------------------------------------

    def normalizer(self, resource: str) -> Normalizer:
        return adapter.values_of_raw

    def external_id(self, resource: str, raw: RawRecord) -> str | None:
        try:
            return adapter.reservation_id(wire.element(bytes(raw)))
        except (ValueError, errors.PartnerError):
            found = _RAW_ID.search(bytes(raw))
            return found.group(1).decode() if found else None

    async def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        """Every queue drained: a page per poll, each acknowledged (``committed``) before the
        next poll. The checkpoint only names the poll; the queue itself is the position."""
        # Polls of an earlier run that never reached ``committed`` (it failed or was cut
        # short) are not this run's to acknowledge: they may not be durable. The partner
        # delivers them again.
        self._polled.clear()
        for queue in QUEUES:
            if not self._rested(queue):
                continue  # found empty moments ago: the next run asks (no slot held waiting)
            delivered: set[str] = set()
            while True:
                await self._ack_pause()
                got = await self._poll(queue)
                if not got.items:
                    self._empty_at[queue.name] = self._clock()
                    break
                page, polled = self._page(queue, got)
                fresh = [i for i in polled.ok + polled.failed if i not in delivered]
                delivered.update(fresh)
                yield page
                await polled.acked.wait()
                if not fresh:
                    # Nothing acknowledgeable that this run had not acknowledged already:
                    # the next poll would bring the same. The next run tries again.
                    if self._log is not None:
                        self._log.warning("queue_not_draining", queue=queue.name, records=len(got.items))
                    break

    async def committed(self, resource: str, checkpoint: dict[str, Any] | None) -> None:
        """Acknowledge every poll up to the one ``checkpoint`` names: they are durable."""
        upto = (checkpoint or {}).get("poll")
        if not isinstance(upto, int):
            return
        for serial in sorted(s for s in self._polled if s <= upto):
            polled = self._polled[serial]
            stamp = polled.stamp
            answer = polled.queue.answer
            if polled.ok:
                await self._acknowledge(polled.queue, wire.acknowledgement(answer, polled.ok, stamp))
            if polled.failed:
                body = wire.acknowledgement(answer, polled.failed, stamp, DEAD_LETTER_ACK)
                await self._acknowledge(polled.queue, body)
            del self._polled[serial]
            self._acked_at = self._clock()
            polled.acked.set()

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        return None  # a queue lists nothing; reservations end canceled, never deleted

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        raise errors.PartnerRejected(
            "Booking.com's reservation queue has no read by id (its filters are for outage "
            "recovery only): a reservation comes again through the queue when it changes"
        )

    async def check_access(self) -> None:
        await self._poll(QUEUES[0])

    async def rotate_secret(self, new_secret: str) -> None:
        auth = self._client.auth
        if not isinstance(auth, ClientCredentials):  # pragma: no cover - as connect() wires it
            raise TypeError("Booking.com integrations authenticate with a machine account")
        await auth.rotate_secret(new_secret, self.check_access)

    # -- the queue --------------------------------------------------------------------------

    def _rested(self, queue: Queue) -> bool:
        """Whether ``queue`` may be polled now: not found empty within ``empty_poll_s``."""
        empty_at = self._empty_at.get(queue.name)
        return empty_at is None or self._clock() - empty_at >= self._pace.empty_poll_s

    async def _ack_pause(self) -> None:
        """The documented pause after an acknowledgement (this run's or the last one's)."""
        if self._acked_at is not None:
            wait = self._acked_at + self._pace.ack_pause_s - self._clock()
            if wait > 0:
                await self._sleep(wait)

    async def _poll(self, queue: Queue) -> wire.Message:
        try:
            got = await self._client.get(queue.path, decode=wire.message)
        except errors.PartnerRejected as exc:
            if exc.status == 403:
                raise _no_access(exc) from exc
            raise
        if got.errors:
            # [assumption] OTA answers may carry ``Errors`` under HTTP 200: an error, never
            # an empty queue (which would end the run as if all were drained).
            raise errors.PartnerRejected(f"{queue.path} answered errors: {'; '.join(got.errors)[:200]}")
        return got

    async def _acknowledge(self, queue: Queue, body: bytes) -> None:
        try:
            # Labelled apart from the poll (same path): acknowledgements are what an
            # operator counts when a queue does not drain.
            answer = await self._client.post(
                f"{queue.path}:ack",
                queue.path,
                content=body,
                content_type=wire.MEDIA_TYPE,
                decode=wire.message,
            )
        except errors.PartnerRejected as exc:
            if exc.status == 403:
                raise _no_access(exc) from exc
            raise
        if answer.errors or not answer.success:
            reason = "; ".join(answer.errors)[:200] or "no Success element"
            raise errors.PartnerRejected(f"acknowledgement refused on {queue.path}: {reason}")

    def _page(self, queue: Queue, got: wire.Message) -> tuple[Page, _Polled]:
        records: list[RawRecord] = []
        values: list[tuple[Any, ...] | None] = []
        ok: list[str] = []
        failed: list[str] = []
        for item in got.items:
            records.append(item.raw)
            ident = adapter.reservation_id(item.element)
            try:
                values.append(adapter.reservation_values(item.element, got.timestamp))
            except adapter.RECORD_ERRORS:
                values.append(None)  # the pipeline normalizes it again and dead-letters it
                if ident is not None:
                    failed.append(ident)
                continue
            assert ident is not None  # values carry it
            ok.append(ident)
        serial = next(self._serial)
        # [assumption] The acknowledgement's TimeStamp echoes the message's: the pages do
        # not say what it must hold, and an echo keeps the same answer to the same message.
        stamp = got.timestamp or datetime.now(UTC).isoformat(timespec="seconds")
        polled = self._polled[serial] = _Polled(queue, ok, failed, stamp)
        checkpoint = {"queue": queue.name, "poll": serial}
        page = Page(records, checkpoint, values, media_type=wire.MEDIA_TYPE, awaits_commit=True)
        return page, polled
