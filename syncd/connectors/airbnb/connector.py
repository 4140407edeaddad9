"""The Airbnb driver: listings and reservations, each walked by update time.

Pagination and incremental filters are not public (partners.md section 4), so:

* [assumption] Lists take ``_limit`` (at most 50) and ``_offset``, the v2 API's paging
  parameters in community clients, and ``updated_since`` (unix seconds, inclusive), and
  come sorted by ``updated_at`` then id. An offset alone over a list that changes while it
  is read skips records; so every request is anchored on the newest ``updated_at``
  consumed, with the offset counted only within that second's tie group, and re-reads the
  last record consumed to prove the group did not shrink (``pagination.UpdatedSinceCursor``:
  an updated record moves to the end and is read again, never pushing another out of
  view). A run resumes from the newest time consumed minus the overlap window.
* [assumption] Listings can be deleted (a get answers 404): the deletion sweep lists
  every id by offset and confirms each missing one with a get. Reservations are
  cancelled, never deleted, so they are not swept.
* A single record is ``{listing|reservation: {...}, metadata: {}}``; the inner object is
  stored, as the list returns it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors import children
from syncd.connectors.airbnb import AUTHORIZE_URL, PARTNER, adapter, wire
from syncd.connectors.base import Normalizer, Page, PartnerInfo
from syncd.connectors.pagination import UpdatedSinceCursor, format_ts, rescanned
from syncd.http.auth import RefreshTokenGrant
from syncd.http.client import PartnerClient
from syncd.store.types import RawRecord

_NORMALIZERS: dict[str, Normalizer] = {
    "properties": adapter.listing_values,
    "reservations": adapter.reservation_values,
}
_PATHS = {"properties": "/listings", "reservations": "/reservations"}
_KEYS = {"properties": "listings", "reservations": "reservations"}


def _head(raw: RawRecord) -> wire.Head:
    try:
        return wire.HEAD.decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return wire.Head()


def listing_id(raw: RawRecord) -> str | None:
    value = _head(raw).id
    return str(value) if type(value) is int else None


def reservation_id(raw: RawRecord) -> str | None:
    value = _head(raw).confirmation_code
    return value if isinstance(value, str) and value.strip() == value and value else None


def updated_at(raw: RawRecord) -> datetime | None:
    value = _head(raw).updated_at
    try:
        return adapter.utc(value) if isinstance(value, str) else None
    except ValueError:
        return None


_IDS = {"properties": listing_id, "reservations": reservation_id}


def _listings(body: bytes) -> list[RawRecord]:
    found = wire.LISTED.decode(body).listings
    if found is None:
        raise ValueError("a listings page without 'listings'")
    return list(found)


def _reservations(body: bytes) -> list[RawRecord]:
    found = wire.LISTED.decode(body).reservations
    if found is None:
        raise ValueError("a reservations page without 'reservations'")
    return list(found)


_DECODERS = {"properties": _listings, "reservations": _reservations}


def _single(body: bytes) -> bytes:
    got = wire.SINGLE.decode(body)
    record = bytes(got.listing) or bytes(got.reservation)
    if not record.lstrip().startswith(b"{"):
        raise ValueError("a response without a listing or reservation object")
    return record


class AirbnbConnector:
    info: PartnerInfo = PARTNER

    def __init__(
        self, client: PartnerClient, page_size: int = PARTNER.page_size, log: Any = None, client_id: str = ""
    ) -> None:
        self._client = client
        self._client_id = client_id
        self._page_size = max(2, min(page_size, PARTNER.page_size))  # the walk re-reads one record
        self._log = log

    def normalizer(self, resource: str) -> Normalizer:
        return _NORMALIZERS[resource]

    def external_id(self, resource: str, raw: RawRecord) -> str | None:
        return _IDS[resource](raw)

    async def _list(self, resource: str, params: dict[str, str | int]) -> list[RawRecord]:
        query: dict[str, str | int] = {"_limit": self._page_size, **params}
        return await self._client.get(_PATHS[resource], params=query, decode=_DECODERS[resource])

    async def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        start = UpdatedSinceCursor.start(checkpoint, settings.overlap_s)
        cursor = UpdatedSinceCursor(start.ts.replace(microsecond=0))  # the filter has whole seconds
        id_of, path = _IDS[resource], _PATHS[resource]
        rescans = 0
        while True:
            params: dict[str, str | int] = {
                "updated_since": int(cursor.ts.timestamp()),
                "_offset": cursor.request_skip,
            }
            page = await self._list(resource, params)
            records = cursor.verify(page, id_of)
            if records is None:
                rescans = rescanned(path, rescans, format_ts(cursor.ts), self._log)
                cursor = cursor.rescan()
                continue
            rescans = 0
            cursor = cursor.advance(records, updated_at, id_of)
            yield Page(records, cursor.to_checkpoint())
            if len(page) < self._page_size:
                return

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        if resource != "properties":
            return None
        return children.offset_ids(
            lambda n: self._list("properties", {"_offset": n}), listing_id, self._page_size
        )

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        path = _PATHS.get(resource)
        valid = external_id.isdigit() if resource == "properties" else external_id.isalnum()
        if path is None or not valid:
            raise errors.PartnerRejected(f"fetch_one: no {resource} record {external_id!r} at Airbnb")
        return await self._client.get_or_none(
            f"{path}/{{id}}", f"{path}/{quote(external_id, safe='')}", decode=_single
        )

    async def check_access(self) -> None:
        await self._client.get("/listings", params={"_limit": 1}, decode=_listings)

    def _grant(self) -> RefreshTokenGrant:
        auth = self._client.auth
        if not isinstance(auth, RefreshTokenGrant):  # pragma: no cover - set by the wiring
            raise TypeError("Airbnb integrations authenticate with an authorization-code grant")
        return auth

    def authorization_url(self, redirect_uri: str, state: str, scope: str | None) -> str:
        """[C] ``https://www.airbnb.com/oauth2/auth?client_id&redirect_uri&scope&state``."""
        query = {"client_id": self._client_id, "redirect_uri": redirect_uri, "state": state}
        if scope:
            query["scope"] = scope
        return f"{AUTHORIZE_URL}?{urlencode(query)}"

    async def authorize(self, code: str) -> None:
        """``syncd authorize``: the one-time code exchanged once for the refresh token."""
        await self._grant().exchange_code(code)

    async def rotate_secret(self, new_secret: str) -> None:
        """The secret is tried with a refresh (which rotates the refresh token: the new one
        is stored with the secret), committed, verified with a listing call, rolled back
        (the secret; the refresh token stays the newest) if that call fails."""
        await self._grant().rotate_secret(new_secret, self.check_access)
