"""The Cloudbeds driver (partners.md section 3): properties listed in full, reservations
walked newest first, each request anchored on ``dateModified``.

``getReservations`` filters by ``modifiedFrom``/``modifiedTo`` (property-local wall
times), numbers its pages and documents one order, ``sortByRecent`` (newest first). A
numbered walk over a list changing under it skips or repeats records, so each request
asks for page 1 below the oldest ``dateModified`` read so far (``modifiedTo``), dropping
the ids already read at that second (``pagination.NewestFirstCursor``): a record edited
meanwhile moves above the walk and shifts nothing below it. Properties go in batches of
one timezone (wall times sort like instants only within a zone), ``BATCH`` ids a
request. Each batch keeps its own mark, by the digest of its ids: the newest
``dateModified`` it had when its walk began (the partner's clock, not ours), where its
next walk starts, minus the overlap. A batch whose properties changed (one joined or
left) has no mark and is walked in full, which brings a joining property's history. The
checkpoint holds the marks and the position, so a run resumes mid-walk.

``dateModified`` "may not reflect some modifications": the resource setting
``full_resync_interval_s`` walks everything again that often (the checkpoint's
``full_at`` says when the last full walk began).
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import msgspec

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors import lenient, localtime
from syncd.connectors.base import Normalizer, Page, PartnerInfo
from syncd.connectors.cloudbeds import PARTNER, adapter, plan, wire
from syncd.connectors.pagination import NewestFirstCursor, NumberedWalk, format_ts, parse_ts
from syncd.http.client import PartnerClient
from syncd.models import MAX_ID_LENGTH
from syncd.store.types import RawRecord

LISTING_RESTARTS = 1  # a property listing whose total moves starts again this often, then reads on
HOTELS_TTL_S = 900.0  # the property list (timezones, currencies) is re-read this often
_KEY = {"properties": "propertyID", "reservations": "reservationID"}


def _listed(body: bytes) -> wire.Listed:  # ``classify_body`` raised on success: false
    got = wire.LISTED.decode(body)
    if got.success is not True:
        raise ValueError("a response without success: true")
    return got


def _single(body: bytes) -> bytes:
    data = bytes(wire.SINGLE.decode(body).data)
    if not data.startswith(b"{"):
        raise ValueError("a response without a record")
    return data


def _head(raw: RawRecord) -> wire.Head:
    return lenient.decode(wire.HEAD, raw, wire.Head())


def _modified(raw: RawRecord, zone: tzinfo) -> datetime | None:
    text = _head(raw).dateModified
    try:
        return localtime.to_utc(text, zone) if isinstance(text, str) else None
    except ValueError:
        return None


class CloudbedsConnector:
    info: PartnerInfo = PARTNER

    def __init__(
        self, client: PartnerClient, page_size: int = PARTNER.page_size, batch: int = plan.BATCH
    ) -> None:
        self._client = client
        self._size, self._batch = min(page_size, PARTNER.page_size), batch
        self._hotels = plan.Hotels()

    def normalizer(self, resource: str) -> Normalizer:
        if resource == "properties":
            return lambda raw: adapter.hotel_values(raw, datetime.now(UTC))
        local = self._hotels.local
        return lambda raw: adapter.reservation_values(raw, local)

    def external_id(self, resource: str, raw: RawRecord) -> str | None:
        key = _KEY[resource]
        value = getattr(_head(raw), key)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            return str(value)
        return lenient.raw_id(raw, key)  # undecodable: its first id names it

    async def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        if resource == "properties":
            async for records in self._hotel_pages():
                yield Page(records, {})
            return
        hotels = await self._hotel_map()
        # The map is rebuilt in place when it expires (another run's refresh, mid-walk): this
        # walk keeps the batches and digest it started with; the next run sees the new ones.
        batches, hotels_digest = hotels.batches, hotels.digest
        n, cp, now = len(batches), checkpoint or {}, time.time()
        marks = {str(d): parse_ts(t) for d, t in dict(cp.get("marks") or {}).items()}
        batch, cursor, full_at = cp.get("batch"), NewestFirstCursor.of(cp), cp.get("full_at") or 0.0
        if cp.get("hotels") != hotels_digest or not isinstance(batch, int) or batch >= n:
            batch, cursor, every = 0, NewestFirstCursor(), settings.full_resync_interval_s  # a new run
            if not checkpoint or (every is not None and now - full_at >= every):
                marks, full_at = {}, now
        overlap = timedelta(seconds=settings.overlap_s)
        for k in range(batch, n):
            digest, zone_name, ids = batches[k]
            zone, mark = localtime.zone_of(zone_name) or UTC, marks.get(digest)
            async for records, after in self._walk(ids, zone, mark and mark - overlap, cursor):
                cursor, done = after, after.done
                if done:  # the batch's mark: the newest record it had
                    marks[digest], cursor = after.newest or mark, NewestFirstCursor()
                kept = {d: (t := marks.get(d)) and format_ts(t) for d, *_ in batches}
                position = {"batch": k + done, "full_at": full_at, "hotels": hotels_digest, "marks": kept}
                yield Page(records, position | cursor.to_checkpoint())
        if n == 0:
            yield Page([], {"hotels": hotels_digest, "marks": {}, "batch": 0, "full_at": full_at})

    async def _walk(
        self, ids: list[str], zone: tzinfo, lower: datetime | None, cursor: NewestFirstCursor
    ) -> AsyncGenerator[tuple[list[RawRecord], NewestFirstCursor], None]:
        """Reservations of ``ids`` newest first from ``cursor`` down to ``lower``: each
        page's records not read yet, and the cursor after them."""
        size, key = self._size, functools.partial(self.external_id, "reservations")
        while not cursor.done:
            params: dict[str, str | int] = {"propertyID": ",".join(ids), "sortByRecent": "true"}
            params |= {"pageSize": size, "pageNumber": cursor.page}
            if lower is not None:
                params["modifiedFrom"] = localtime.wall(lower, zone)
            if cursor.before is not None:
                params["modifiedTo"] = localtime.wall(cursor.before, zone)
            page = await self._client.get("/getReservations", params=params, decode=_listed)
            try:
                ts_of = functools.partial(_modified, zone=zone)
                fresh, cursor = cursor.advance(page.data, page.total, size, ts_of, key)
            except ValueError as exc:
                raise errors.PaginationError(f"getReservations: {exc}") from exc
            yield fresh, cursor

    async def _hotel_pages(self) -> AsyncGenerator[list[RawRecord], None]:
        """Every ``getHotels`` page, by number, started again once if the total moves
        (``pagination.NumberedWalk``): on a busy account the list may change faster than it
        can be read, and a property a shift hid is listed next run (the sweep confirms each
        missing one with a GET). The map is rebuilt at the end."""
        walk, found = NumberedWalk(LISTING_RESTARTS), list[wire.Hotel]()
        while not walk.done:
            params: dict[str, str | int] = {"pageNumber": walk.number, "pageSize": self._size}
            page = await self._client.get("/getHotels", params=params, decode=_listed)
            walk = walk.advance(len(page.data), page.total, self._size)
            if walk.restarted:
                found.clear()  # the map is built from one attempt's pages
                continue
            for raw in page.data:
                try:
                    found.append(wire.HOTEL.decode(raw))
                except msgspec.MsgspecError:
                    pass  # its normalization dead-letters it; it lends nothing
            yield list(page.data)
        self._hotels.build(found, self._batch)

    async def _hotel_map(self) -> plan.Hotels:
        if time.monotonic() - self._hotels.loaded > HOTELS_TTL_S:
            async for _ in self._hotel_pages():
                pass
        return self._hotels

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        """Property ids (reservations are never swept: they end canceled)."""
        return self._ids() if resource == "properties" else None

    async def _ids(self) -> AsyncGenerator[list[str], None]:
        async for records in self._hotel_pages():
            found = (self.external_id("properties", r) for r in records)
            yield [i for i in found if i is not None and len(i) <= MAX_ID_LENGTH]

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        if resource == "properties":
            params: dict[str, str | int] = {"propertyIDs": external_id}
            page = await self._client.get("/getHotels", params=params, decode=_listed)
            return next((bytes(r) for r in page.data if self.external_id(resource, r) == external_id), None)
        await self._hotel_map()  # its normalizer needs the property's timezone
        params = {"reservationID": external_id}
        return await self._client.get_or_none("/getReservation", "/getReservation", params, decode=_single)

    async def check_access(self) -> None:
        await self._client.get("/getHotels", params={"pageNumber": 1, "pageSize": 1}, decode=_listed)

    async def rotate_secret(self, new_secret: str) -> None:
        raise errors.PartnerRejected("Cloudbeds API keys are replaced in its UI, not rotated by syncd")
