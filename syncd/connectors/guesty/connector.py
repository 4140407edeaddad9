"""The Guesty driver: listings and reservations, incrementally by ``lastUpdatedAt``; a
listing's photos as a child resource (``stream_children``)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
import msgspec
import orjson

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors.base import ChildPage, Normalizer, Page, PartnerInfo
from syncd.connectors.guesty import PARTNER, adapter, wire
from syncd.connectors.json_repair import repair_lone_surrogates
from syncd.connectors.pagination import MAX_CONSECUTIVE_RESCANS, UpdatedSinceCursor, format_ts, parse_ts
from syncd.http.auth import ClientCredentials
from syncd.http.client import PartnerClient
from syncd.models import MAX_ID_LENGTH
from syncd.store.types import RawRecord

ENDPOINTS = {"properties": "/listings", "reservations": "/reservations"}
# A page fetched one record at a time gives up past this many undecodable records: the
# partner is then broken as a whole, not one record of it (the run fails and retries).
MAX_BROKEN_PER_PAGE = 5
# Page requests in flight during a long listing (one anchored, the rest ahead).
PAGES_IN_FLIGHT = 4
# GET /listings/{id}?fields=...: partners.md documents ``fields=pictures`` for photos.
# [assumption] ``fields`` takes several names here as on the list (space-separated), so the
# listing's ``lastUpdatedAt`` comes along: the photo rows' partner timestamp.
PICTURE_FIELDS = "pictures lastUpdatedAt"
_RAW_ID = re.compile(rb'"_id"\s*:\s*"([0-9A-Za-z_-]{1,64})"')
_NORMALIZERS: dict[str, Normalizer] = {
    "properties": adapter.listing_values,
    "reservations": adapter.reservation_values,
}


def _head(raw: RawRecord) -> wire.Head:
    try:
        return wire.HEAD.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return wire.Head()


def _id_of(raw: RawRecord) -> str | None:
    value = _head(raw).id
    return value if isinstance(value, str) and value else None


def _ts_of(raw: RawRecord) -> Any:
    return parse_ts(_head(raw).lastUpdatedAt)


@dataclass(frozen=True, slots=True)
class _Listed:
    """One list response: its records, the partner's ``count`` (None: not an int) and,
    when the page was decoded typed as a whole, each record's canonical values
    (``Page.prenormalized``)."""

    records: list[RawRecord]
    count: int | None
    values: list[tuple[Any, ...] | None] | None = None


def _page(body: bytes) -> wire.Page:
    """A listing page, from the body received or, if the fast decoder refuses it, from a
    copy repaired by ``json_repair``."""
    try:
        return wire.PAGE.decode(body)
    except msgspec.DecodeError:
        repaired = repair_lone_surrogates(body)
        if repaired is body:
            raise
        return wire.PAGE.decode(repaired)


def _listed(body: bytes) -> _Listed:
    """A list response's records as slices of its body, not copies: copying each record
    out of its page would cost ~1 µs, a twentieth of the daemon's CPU per record, and a batch
    holds its pages' records anyway, so the slices pin no more memory than copies would.
    Nothing here checks the bytes are UTF-8: the store keeps ``raw`` as bytes, whatever
    they are, and the wire decoder refuses a record only for the fields it reads."""
    page = _page(body)
    count = page.count if isinstance(page.count, int) and not isinstance(page.count, bool) else None
    return _Listed(list(page.results), count)


def _typed_listed(
    decoder: msgspec.json.Decoder[Any], values_of: Callable[[Any], tuple[Any, ...]]
) -> Callable[[bytes], _Listed]:
    """``_listed``, plus every record's canonical values from one typed decode of the whole
    body: msgspec then reads the page in one call instead of one per record, which takes
    a few tenths of a µs off each record. A page with a record the wire decoder refuses
    fails that decode as a whole; it is then passed on without values and normalized
    record by record, so only that record becomes a dead letter."""

    def listed(body: bytes) -> _Listed:
        plain = _listed(body)
        try:
            decoded = decoder.decode(body).results
        except (msgspec.MsgspecError, RecursionError):
            return plain
        if len(decoded) != len(plain.records):  # cannot be; and if it were, no guessing
            return plain
        values: list[tuple[Any, ...] | None] = []
        for record in decoded:
            try:
                values.append(values_of(record))
            except Exception:
                values.append(None)
        return _Listed(plain.records, plain.count, values)

    return listed


_LIST_DECODERS = {
    "/listings": _typed_listed(wire.LISTING_PAGE, adapter.listing_values_of),
    "/reservations": _typed_listed(wire.RESERVATION_PAGE, adapter.reservation_values_of),
}
# An integration that does not sync photos: listings without the pictures digest.
_LIST_DECODERS_UNPICTURED = {
    **_LIST_DECODERS,
    "/listings": _typed_listed(wire.LISTING_PAGE, adapter.listing_values_of_unpictured),
}


def _kept_values(listed: _Listed, kept: list[RawRecord]) -> list[tuple[Any, ...] | None] | None:
    """``listed.values`` for ``kept``: the page's records less at most one (the anchor)."""
    values = listed.values
    if values is None or len(kept) == len(values):
        return values
    for n, record in enumerate(kept):
        if record is not listed.records[n]:
            return values[:n] + values[n + 1 :]
    return values[: len(kept)]


def _beyond(count: int | None, skip: int, results: list[RawRecord]) -> int | None:
    """Records past this page by the partner's own ``count`` (None: it did not say)."""
    return None if count is None else count - skip - len(results)


def _single(body: bytes) -> bytes:
    """A single-record response, validated as a JSON object and kept as raw bytes."""
    if not isinstance(orjson.loads(body), dict):
        raise ValueError("expected a JSON object")
    return body


class GuestyConnector:
    info: PartnerInfo = PARTNER

    def __init__(
        self,
        client: PartnerClient,
        page_size: int = PARTNER.page_size,
        log: Any = None,
        *,
        photos: bool = True,
    ) -> None:
        self._client = client
        self._page_size = min(page_size, PARTNER.page_size)
        self._log = log
        # Photos synced: listings carry their pictures digest (``photos_fingerprint``).
        self._decoders = _LIST_DECODERS if photos else _LIST_DECODERS_UNPICTURED
        self._photos = photos

    def normalizer(self, resource: str) -> Normalizer:
        if resource == "properties" and not self._photos:
            return adapter.listing_values_unpictured
        return _NORMALIZERS[resource]

    def external_id(self, resource: str, raw: RawRecord) -> str | None:
        found = _id_of(raw)
        if found is None:  # undecodable: the first "_id" in it still names the record
            match = _RAW_ID.search(memoryview(raw)[:4096])
            found = match.group(1).decode() if match else None
        return found

    async def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        endpoint = ENDPOINTS[resource]
        cursor = UpdatedSinceCursor.start(checkpoint, settings.overlap_s)
        rescans = 0
        # Records the partner said lie beyond the last page (None: it did not say, after a
        # full page). 0 at first: most runs are incremental, one short page, one request.
        remaining: int | None = 0
        while True:
            listed, ahead, remaining = await self._pages_from(endpoint, cursor, remaining)
            records = cursor.verify(listed.records, _id_of)
            if records is None:
                rescans += 1
                if rescans > MAX_CONSECUTIVE_RESCANS:
                    raise errors.PaginationError(f"{endpoint}: tie group keeps shifting at {cursor.ts}")
                if self._log is not None:
                    self._log.info("tie_group_shifted", endpoint=endpoint, updated_since=format_ts(cursor.ts))
                cursor = cursor.rescan()
                remaining = 0
                continue
            rescans = 0
            cursor = cursor.advance(records, _ts_of, _id_of)
            yield Page(records, cursor.to_checkpoint(), prenormalized=_kept_values(listed, records))
            if len(listed.records) < self._page_size:
                return
            # A page requested ahead counts only if it starts exactly where the previous one
            # ended (its first record is the new anchor): nothing shifted between requests.
            # The first that does not is discarded with all after it.
            for page in ahead:
                if (
                    page is None
                    or cursor.anchor is None
                    or not page.records
                    or _id_of(page.records[0]) != cursor.anchor
                ):
                    if page is not None and self._log is not None:
                        self._log.info(
                            "page_ahead_discarded", endpoint=endpoint, updated_since=format_ts(cursor.ts)
                        )
                    break
                cursor = cursor.advance(page.records[1:], _ts_of, _id_of)
                values = None if page.values is None else page.values[1:]
                yield Page(page.records[1:], cursor.to_checkpoint(), prenormalized=values)
                if len(page.records) < self._page_size:
                    return

    async def _pages_from(
        self, endpoint: str, cursor: UpdatedSinceCursor, remaining: int | None
    ) -> tuple[_Listed, list[_Listed | None], int | None]:
        """The cursor's page and, when more than a page is known to follow, up to
        ``PAGES_IN_FLIGHT - 1`` pages after it, requested together. Pagination is
        sequential (each request is anchored on the last page's content), so one request
        at a time leaves the partner idle while we process its answer and us idle while it
        renders the next: the fetch chain then bounds a full sync. Page ``i``
        ahead is requested with this request's filter and a skip ``i`` pages further, less
        one record per page: it re-reads the previous page's last record first, which
        ``stream`` checks before using it (else the page is requested again, anchored)."""
        skip = cursor.request_skip
        step = self._page_size - 1
        if remaining is None:
            extra = PAGES_IN_FLIGHT - 1
        else:
            extra = min(PAGES_IN_FLIGHT - 1, max(0, -(-(remaining - self._page_size) // step)))
        if extra == 0 or step == 0:
            listed = await self._page_at(endpoint, cursor)
            return listed, [], _beyond(listed.count, skip, listed.records)
        ahead: list[_Listed | None] = [None] * extra

        async def fetch_ahead(i: int) -> None:
            # Any failure only loses the head start: the page is requested again, anchored,
            # and a lasting failure is raised from there, plainly (not as a task group's).
            with contextlib.suppress(Exception):
                ahead[i] = await self._list(endpoint, cursor, self._page_size, skip + (i + 1) * step)

        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            for i in range(extra):
                tg.start_soon(fetch_ahead, i)
            try:
                listed = await self._page_at(endpoint, cursor)
            except Exception as exc:  # raised outside the task group, not as a group
                failure = exc
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        beyond = _beyond(listed.count, skip, listed.records)
        for page in ahead:
            if beyond is None or page is None:
                break
            beyond -= max(0, len(page.records) - 1)
        return listed, ahead, beyond

    async def _page_at(self, endpoint: str, cursor: UpdatedSinceCursor) -> _Listed:
        try:
            return await self._list(endpoint, cursor, self._page_size, cursor.request_skip)
        except errors.UndecodableBody as exc:
            return _Listed(await self._one_by_one(endpoint, cursor, exc), None)

    async def _list(self, endpoint: str, cursor: UpdatedSinceCursor, limit: int, skip: int) -> _Listed:
        filters = [{"field": "lastUpdatedAt", "operator": "$gte", "value": format_ts(cursor.ts)}]
        params: dict[str, str | int] = {
            "limit": limit,
            "skip": skip,
            "sort": "lastUpdatedAt",
            "filters": orjson.dumps(filters).decode(),
        }
        return await self._client.get(endpoint, params=params, decode=self._decoders.get(endpoint, _listed))

    async def _one_by_one(
        self, endpoint: str, cursor: UpdatedSinceCursor, failure: errors.UndecodableBody
    ) -> list[RawRecord]:
        """The page the partner keeps serving undecodable (retries exhausted), one record per
        request: the broken record's body becomes a dead letter and its neighbours are
        saved, instead of the same page failing every run forever. A partner that answers
        garbage throughout is not salvaged: past ``MAX_BROKEN_PER_PAGE`` the error stands."""
        out: list[RawRecord] = []
        broken = 0
        for offset in range(self._page_size):
            try:
                got = (await self._list(endpoint, cursor, 1, cursor.request_skip + offset)).records
            except errors.UndecodableBody as exc:
                broken += 1
                if broken > MAX_BROKEN_PER_PAGE:
                    raise failure from exc
                out.append(exc.body or b"<empty body>")  # fails normalization: a dead letter
                continue
            if not got:
                break
            out.extend(got)
        if self._log is not None:
            self._log.warning(
                "page_salvaged", endpoint=endpoint, updated_since=format_ts(cursor.ts), broken=broken
            )
        return out

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        if resource != "properties":
            return None
        return self._listing_ids()

    async def _listing_ids(self) -> AsyncGenerator[list[str], None]:
        skip = 0
        while True:
            params: dict[str, str | int] = {
                "limit": self._page_size,
                "skip": skip,
                "fields": "_id",
                "sort": "_id",
            }
            page = await self._client.get("/listings", params=params, decode=_page)
            # An id the canonical models refuse is in no table (and too long to index).
            ids = [i for i in map(_id_of, page.results) if i is not None and len(i) <= MAX_ID_LENGTH]
            yield ids
            if len(page.results) < self._page_size:
                return
            skip += len(page.results)

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        if resource == "properties":
            path = f"/listings/{quote(external_id, safe='')}"
            return await self._client.get_or_none("/listings/{id}", path, decode=_single)
        if resource == "reservations":
            # The legacy reservations API documents no GET by id: a list query on ``_id``.
            filters = [{"field": "_id", "operator": "$eq", "value": external_id}]
            params: dict[str, str | int] = {"limit": 1, "filters": orjson.dumps(filters).decode()}
            page = await self._client.get(ENDPOINTS[resource], params=params, decode=_page)
            found = [bytes(r) for r in page.results if _id_of(r) == external_id]
            return found[0] if found else None
        raise errors.PartnerRejected(f"fetch_one is not supported for {resource}")

    async def stream_children(self, resource: str, parent_ids: list[str]) -> AsyncGenerator[ChildPage, None]:
        """Each listing's pictures (``photos``), one request per listing: a listing whose
        photos changed (its list page's ``pictures`` digest moved) is read again whole."""
        if resource != "photos":
            raise errors.PartnerRejected(f"{resource} is not a child resource of Guesty listings")
        for listing_id in parent_ids:
            path = f"/listings/{quote(listing_id, safe='')}"
            params: dict[str, str | int] = {"fields": PICTURE_FIELDS}
            found = await self._client.get_or_none(
                "/listings/{id}", path, params, decode=wire.LISTING_PICTURES.decode
            )
            if found is None:  # the listing is gone: so are its photos
                yield ChildPage([listing_id], [], [])
                continue
            values: list[tuple[Any, ...] | Exception] = []
            for position, raw in enumerate(found.pictures):
                try:
                    values.append(adapter.picture_values(raw, listing_id, position, found.lastUpdatedAt))
                except (msgspec.MsgspecError, ValueError) as exc:  # pydantic's is a ValueError
                    values.append(exc)
            yield ChildPage([listing_id], list(found.pictures), values)

    async def check_access(self) -> None:
        params: dict[str, str | int] = {"limit": 1, "fields": "_id"}
        await self._client.get("/listings", params=params, decode=_page)

    async def rotate_secret(self, new_secret: str) -> None:
        auth = self._client.auth
        if not isinstance(auth, ClientCredentials):  # pragma: no cover - as connect() wires it
            raise TypeError("Guesty integrations authenticate with client credentials")
        await auth.rotate_secret(new_secret, self.check_access)
