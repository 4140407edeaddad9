"""Guesty on API version ``v3``: listings as before, reservations from reservations-v3.

``GET /reservations-v3/search`` sorts on ``_id``, ``checkIn``, ``checkOut`` or
``createdAt`` only, filters on status, stay dates and ``createdAt``, and has **no filter
on the update time** (partners.md section 1). An edited reservation (a cancellation, new
dates) therefore cannot be asked for; it can only be read again. So every run is a full
walk, ascending ``_id`` with ``skip``/``limit`` until ``pagination.hasMore`` is false:

* correct without an update filter: every live reservation is read every run, so edits
  and cancellations (a status) land by the next run; the deletion sweep walks the same
  way and confirms each missing id with a GET, so deletions converge too;
* cheap where it matters: an unchanged record is the same bytes with the same
  ``lastUpdatedAt``, which the store counts as unchanged without writing a row;
* stable positions: new ids (Mongo ObjectIds) sort after the existing ones, so inserts
  land at the end and never shift a page already read; the walk needs no anchor, and
  its pages are requested several at a time. Only a deletion ahead of the cursor shifts
  positions, losing at most one record for this walk (the next walk reads it);
* resumable: the checkpoint is the walk's position, so a run stopped by faults resumes
  where it stopped; a completed walk resets it, and the next run walks again.

The cost is the whole account per run instead of its changes: ``ceil(reservations /
100)`` requests, e.g. 200 for 20,000 reservations, which is 800 of the account's 5,000
requests an hour on a 15-minute interval, plus decoding every record. Lengthen the
reservations' ``interval_s`` for large accounts. The cheaper alternative, a
``filter[createdAt][gte]`` walk for new reservations with full walks only now and then,
would leave edits and cancellations stale until the next full walk; it is not done here.

A checkpoint from another version (the legacy ``updated_since``) starts a full walk, so
an integration moved either way by a rollout converges on its first run.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
import msgspec

from syncd.config import ResourceSettings
from syncd.connectors.base import Normalizer, Page
from syncd.connectors.guesty import adapter, wire
from syncd.connectors.guesty.connector import GuestyConnector, _id_of, _single
from syncd.connectors.json_repair import repair_lone_surrogates
from syncd.models import MAX_ID_LENGTH
from syncd.store.types import RawRecord

VERSION = "v3"
SEARCH = "/reservations-v3/search"
# ASSUMPTION (partners.md documents the search only): one reservation at this path.
BY_ID = "/reservations-v3/{id}"
WALK = "_id"
# Pages requested together once the walk knows more follow (doubling from one, so a
# small account costs one request per run).
PAGES_IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class _Found:
    """One search response: its records (slices of the body), ``pagination.hasMore``
    (None: not a boolean) and, when the page decoded typed as a whole, each record's
    canonical values (``Page.prenormalized``)."""

    records: list[RawRecord]
    has_more: bool | None
    values: list[tuple[Any, ...] | None] | None


def _search_page(body: bytes) -> wire.SearchPage:
    try:
        return wire.SEARCH_PAGE.decode(body)
    except msgspec.DecodeError:
        repaired = repair_lone_surrogates(body)
        if repaired is body:
            raise
        return wire.SEARCH_PAGE.decode(repaired)


def _found(body: bytes) -> _Found:
    page = _search_page(body)
    flag = page.pagination.hasMore if page.pagination is not None else None
    records: list[RawRecord] = list(page.results)
    has_more = flag if isinstance(flag, bool) else None
    try:
        decoded = wire.RESERVATION_V3_PAGE.decode(body).results
    except (msgspec.MsgspecError, RecursionError):
        return _Found(records, has_more, None)  # normalized record by record instead
    if len(decoded) != len(records):
        return _Found(records, has_more, None)
    values: list[tuple[Any, ...] | None] = []
    for record in decoded:
        try:
            values.append(adapter.reservation_v3_values_of(record))
        except Exception:
            values.append(None)
    return _Found(records, has_more, values)


def _resume_at(checkpoint: dict[str, Any] | None) -> int:
    """Where an interrupted walk stopped; 0 (a new walk) for anything else."""
    skip = (checkpoint or {}).get("skip")
    if (checkpoint or {}).get("walk") != WALK or not isinstance(skip, int) or skip < 0:
        return 0
    return skip


class GuestyV3Connector(GuestyConnector):
    """Reservations from reservations-v3 (see the module docstring); the rest as legacy."""

    def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        if resource != "reservations":
            return super().stream(resource, checkpoint, settings)
        return self._walk(_resume_at(checkpoint))

    def normalizer(self, resource: str) -> Normalizer:
        if resource == "reservations":
            return adapter.reservation_v3_values
        return super().normalizer(resource)

    async def _walk(self, skip: int) -> AsyncGenerator[Page, None]:
        size = self._page_size
        window = 1
        while True:
            pages = await self._window(skip, window)
            for found in pages:
                if isinstance(found, Exception):
                    raise found  # the pages before it are yielded (and committed) already
                skip += len(found.records)
                more = found.has_more if found.has_more is not None else len(found.records) == size
                done = not more or not found.records
                checkpoint = {"walk": WALK, "skip": 0 if done else skip}
                yield Page(found.records, checkpoint, prenormalized=found.values)
                if done:
                    return
                if len(found.records) < size:
                    break  # a short page that has more: the next page starts elsewhere
            window = min(2 * window, PAGES_IN_FLIGHT)

    async def _window(self, skip: int, count: int) -> list[_Found | Exception]:
        """``count`` consecutive pages from ``skip``, requested together; a page that fails
        (after the client's retries) is its exception, in its place."""
        out: list[_Found | Exception] = [Exception("not requested")] * count

        async def one(i: int) -> None:
            try:
                out[i] = await self._search(skip + i * self._page_size)
            except Exception as exc:
                out[i] = exc

        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, i)
        return out

    async def _search(self, skip: int) -> _Found:
        params: dict[str, str | int] = {"sort": WALK, "skip": skip, "limit": self._page_size}
        found: _Found = await self._client.get(SEARCH, params=params, decode=_found)
        return found

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        if resource != "reservations":
            return super().live_ids(resource)
        return self._reservation_ids()

    async def _reservation_ids(self) -> AsyncGenerator[list[str], None]:
        async for page in self._walk(0):
            ids = [i for i in map(_id_of, page.records) if i is not None and len(i) <= MAX_ID_LENGTH]
            yield ids

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        if resource != "reservations":
            return await super().fetch_one(resource, external_id)
        path = f"/reservations-v3/{quote(external_id, safe='')}"
        return await self._client.get_or_none(BY_ID, path, decode=_single)
