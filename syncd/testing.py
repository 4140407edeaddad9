"""Fakes shipped for tests (STYLE.md 5): a connector that serves records from memory.

Real PostgreSQL and the real simulator are used wherever they can be; this fake exists for
pipeline behaviour that needs exact control of what the partner returns, page by page.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import orjson

from syncd.config import ResourceSettings
from syncd.connectors.base import Normalizer, Page, PartnerInfo
from syncd.http.transport import PartnerTransport
from syncd.store.types import RawRecord


@dataclass(frozen=True)
class FakePartner:
    """What ``FakeConnector`` needs to play a partner: its facts, its normalizer per
    resource, and the id of one of its records (a parsed JSON object; None: no usable id)."""

    info: PartnerInfo
    normalizers: Mapping[str, Normalizer]
    id_of: Callable[[Mapping[str, Any]], str | None]


@dataclass
class FakeConnector:
    """Serves ``records`` (the partner's JSON objects, as dicts) from memory, ``page_size``
    at a time, normalized by the real adapter of ``partner``.

    ``listed_ids`` (default: every record's id) is what the deletion sweep sees, and
    ``existing`` (id -> record) what a direct GET finds, so tests can make them disagree.
    """

    records: list[dict[str, Any]]
    page_size: int = 100
    listed_ids: list[str] | None = None
    existing: dict[str, dict[str, Any]] | None = None
    page_delay_s: float = 0.0  # a slow partner
    # new id -> old id: records the partner re-identified, said on the page that carries them
    merged_from: dict[str, str] = field(default_factory=dict)
    fetch_one_calls: list[str] = field(default_factory=list)
    partner: FakePartner = field(kw_only=True)
    info: PartnerInfo = field(init=False)

    def __post_init__(self) -> None:
        self.info = self.partner.info

    def normalizer(self, resource: str) -> Normalizer:
        return self.partner.normalizers[resource]

    def external_id(self, resource: str, raw: bytes) -> str | None:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # like a real driver: a broken record has no id we can trust
        return self.partner.id_of(record) if isinstance(record, dict) else None

    async def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        start = int((checkpoint or {}).get("offset", 0))
        for i in range(start, len(self.records), self.page_size):
            if self.page_delay_s:
                await anyio.sleep(self.page_delay_s)
            chunk = self.records[i : i + self.page_size]
            ids = [self.partner.id_of(r) for r in chunk] if self.merged_from else []
            merged = {new: self.merged_from[new] for new in ids if new in self.merged_from}
            records: list[RawRecord] = [orjson.dumps(r) for r in chunk]
            yield Page(records, {"offset": i + len(chunk)}, merged_from=merged or None)

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        ids = self.listed_ids if self.listed_ids is not None else [self._id(r) for r in self.records]
        return self._ids(ids)

    async def _ids(self, ids: Sequence[str]) -> AsyncGenerator[list[str], None]:
        for i in range(0, len(ids), self.page_size):
            yield list(ids[i : i + self.page_size])

    def _id(self, record: Mapping[str, Any]) -> str:
        found = self.partner.id_of(record)
        if found is None:
            raise ValueError(f"a fake record without an id: {record!r}")
        return found

    async def check_access(self) -> None:
        return None

    async def rotate_secret(self, new_secret: str) -> None:
        raise NotImplementedError("FakeConnector has no credentials")

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        self.fetch_one_calls.append(external_id)
        found = (self.existing or {self._id(r): r for r in self.records}).get(external_id)
        return None if found is None else orjson.dumps(found)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Send time (monotonic) and status of every request, as the client saw them."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or PartnerTransport()
        self.sent: list[tuple[float, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        response = await self.inner.handle_async_request(request)
        self.sent.append((started, response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
