"""The Hostaway driver: listings, reservations and their calendar, each walked by its own
documented means (partners.md section 2).

* **Listings** have ``limit``/``offset`` paging, ``sortOrder=latestActivity`` (oldest
  activity first) and the filter ``latestActivityStart``: ``pagination.UpdatedSinceCursor``
  fits as is. Each request is anchored on the newest ``latestActivityOn`` consumed with an
  offset counted only within that second's tie group, and re-reads the last record
  consumed to prove the group did not shrink under us.
* **The calendar** is read listing by listing over the window (``children``), without the
  embedded bookings; a day has no update time, so each run reads it all (``calendar``).
* **Reservations** page by the cursor ``afterId`` (``offset`` is deprecated) in
  ``sortOrder=updatedOn`` with ``latestActivityStart``: ``cursor.AfterIdCursor``, whose
  docstring explains how a modified or deleted cursor record is detected.

Times have one-second granularity, so ties are common (a bulk edit stamps hundreds of
records with one second): both walks count or verify within a tie group and never trust a
timestamp alone. A run resumes from the newest time consumed minus the overlap window.
Every body is ``{status, result, ...}``; a ``"fail"`` status on a 2xx is refused by
``PARTNER.classify_body`` before any decoding.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any

import msgspec

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors import children
from syncd.connectors.base import Normalizer, Page, PartnerInfo
from syncd.connectors.hostaway import PARTNER, adapter, calendar, wire
from syncd.connectors.hostaway.cursor import AfterIdCursor, hostaway_time, parse_time
from syncd.connectors.pagination import UpdatedSinceCursor, rescanned
from syncd.http.auth import ClientCredentials
from syncd.http.client import PartnerClient
from syncd.store.types import RawRecord

_NORMALIZERS: dict[str, Normalizer] = {
    "properties": adapter.listing_values,
    "reservations": adapter.reservation_values,
    "calendar": calendar.day_values,
}
_PATHS = {"properties": "/listings", "reservations": "/reservations"}


def _head(raw: RawRecord) -> wire.Head:
    try:
        return wire.HEAD.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return wire.Head()


def _int_id(raw: RawRecord) -> int | None:
    value = _head(raw).id
    return value if type(value) is int else None


def _str_id(raw: RawRecord) -> str | None:
    value = _int_id(raw)
    return None if value is None else str(value)


def _updated_on(raw: RawRecord) -> datetime | None:
    return parse_time(_head(raw).updatedOn)


def _latest_activity(raw: RawRecord) -> datetime | None:
    return parse_time(_head(raw).latestActivityOn)


def _result(body: bytes) -> msgspec.Raw:
    """The envelope's ``result`` (a ``"fail"`` envelope never gets here: ``fail_status``)."""
    return wire.ENVELOPE.decode(body).result


def _records(body: bytes) -> list[RawRecord]:
    return list(wire.RECORDS.decode(_result(body)))


def _single(body: bytes) -> bytes:
    record = bytes(_result(body))
    if not record.lstrip().startswith(b"{"):
        raise ValueError("expected a JSON object in 'result'")
    return record


class HostawayConnector:
    info: PartnerInfo = PARTNER

    def __init__(self, client: PartnerClient, page_size: int = PARTNER.page_size, log: Any = None) -> None:
        self._client = client
        self._page_size = max(2, min(page_size, PARTNER.page_size))  # the walks re-read one record
        self._log = log

    def normalizer(self, resource: str) -> Normalizer:
        return _NORMALIZERS[resource]

    def external_id(self, resource: str, raw: RawRecord) -> str | None:
        return calendar.day_id(raw) if resource == "calendar" else _str_id(raw)

    def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        if resource == "properties":
            return self._listings(checkpoint, settings.overlap_s)
        if resource == "calendar":
            return children.walk(self._listing_ids(), checkpoint, children.Window.of(settings), self._days)
        return self._reservations(checkpoint, settings.overlap_s)

    async def _list(self, path: str, params: dict[str, str | int]) -> list[RawRecord]:
        return await self._client.get(path, params={"limit": self._page_size, **params}, decode=_records)

    async def _listings(
        self, checkpoint: dict[str, Any] | None, overlap_s: float
    ) -> AsyncGenerator[Page, None]:
        start = UpdatedSinceCursor.start(checkpoint, overlap_s)
        cursor = UpdatedSinceCursor(start.ts.replace(microsecond=0))
        rescans = 0
        while True:
            params: dict[str, str | int] = {
                "sortOrder": "latestActivity",
                "latestActivityStart": hostaway_time(cursor.ts),
                "offset": cursor.request_skip,
            }
            page = await self._list("/listings", params)
            records = cursor.verify(page, _str_id)
            if records is None:
                rescans = rescanned("/listings", rescans, hostaway_time(cursor.ts), self._log)
                cursor = cursor.rescan()
                continue
            rescans = 0
            cursor = cursor.advance(records, _latest_activity, _str_id)
            yield Page(records, cursor.to_checkpoint())
            if len(page) < self._page_size:
                return

    async def _reservations(
        self, checkpoint: dict[str, Any] | None, overlap_s: float
    ) -> AsyncGenerator[Page, None]:
        cursor = AfterIdCursor.start(checkpoint, overlap_s)
        rescans = 0
        while True:
            page = await self._list("/reservations", cursor.params())
            records = cursor.verify(page, _int_id, _updated_on)
            if records is None:
                rescans = rescanned("/reservations", rescans, hostaway_time(cursor.since), self._log)
                cursor = cursor.rescan()
                continue
            rescans = 0
            moved = cursor.advance(records, _int_id, _updated_on)
            if len(page) >= self._page_size and moved.after_id is None:
                # A full page whose records carry no usable id: no cursor can follow it.
                raise errors.PaginationError(f"/reservations: no id to continue after at {cursor.since}")
            cursor = moved
            yield Page(records, cursor.to_checkpoint())
            if len(page) < self._page_size:
                return

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        return self._listing_ids() if resource == "properties" else None

    def _listing_ids(self) -> AsyncGenerator[list[str], None]:
        return children.offset_ids(lambda n: self._list("/listings", {"offset": n}), _str_id, self._page_size)

    def calendar(self, listing_ids: Sequence[str], settings: ResourceSettings) -> AsyncGenerator[Page, None]:
        """The calendar window of exactly ``listing_ids``, one page per listing, in order."""
        return children.for_parents(listing_ids, children.Window.of(settings), self._days)

    async def _days(self, listing_id: str, window: children.Window) -> list[RawRecord] | None:
        params = {"startDate": str(window.first), "endDate": str(window.last), "includeResources": "0"}
        url = f"/listings/{int(listing_id)}/calendar"  # ids are integers: anything else is refused here
        return await self._client.get_or_none("/listings/{id}/calendar", url, params, decode=_records)

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        if resource == "calendar":  # one day, ``<listing id>:<YYYY-MM-DD>``
            return await children.fetch_one(external_id, self._days)
        if (path := _PATHS.get(resource)) is None or not external_id.isdigit():
            raise errors.PartnerRejected(f"fetch_one: no {resource} record {external_id!r} at Hostaway")
        return await self._client.get_or_none(f"{path}/{{id}}", f"{path}/{int(external_id)}", decode=_single)

    async def check_access(self) -> None:
        await self._client.get("/listings", params={"limit": 1}, decode=_records)

    async def rotate_secret(self, new_secret: str) -> None:
        auth = self._client.auth
        if not isinstance(auth, ClientCredentials):  # pragma: no cover - set by the wiring
            raise TypeError("Hostaway integrations authenticate with client credentials")
        await auth.rotate_secret(new_secret, self.check_access)
