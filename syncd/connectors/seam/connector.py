"""The Seam driver: access codes by RPC (partners.md section 8), for ``syncd.engine.access``.

Method-aware retries (docs/pushes.md): ``/access_codes/create`` is the one call whose
repetition does harm (a second code on the door), so the client sends it again only when
Seam provably did not act (no connection, a 429); ``update`` sets absolute times and
``delete`` of a code that is gone answers 404 (taken as done), so both retry like reads.
Every create carries an ``Idempotency-Key`` header: [assumption] partners.md does not say
Seam honours one, so it is a second line of defence, never the first (the executor lists
the device's codes to find out what a lost answer did).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors.access import FAILED, REMOVING, SET, SETTING, DesiredCode, RemoteCode
from syncd.connectors.base import Normalizer, Page, PartnerInfo
from syncd.connectors.seam import PARTNER, wire
from syncd.http.client import PartnerClient
from syncd.store.types import RawRecord

LIST_LIMIT = 100
# Seam's limits per device and minute (partners.md section 8), kept here too.
DEVICE_LIMITS: Mapping[str, int] = {"create": 10, "update": 10, "delete": 20}
DEVICE_WINDOW_S = 60.0
# Seam's statuses in ours; a code with errors[] is failed whatever its status says.
_STATUS = {"setting": SETTING, "set": SET, "removing": REMOVING, "unset": SETTING}


def seam_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def remote(code: wire.AccessCode) -> RemoteCode:
    status = FAILED if code.errors else _STATUS.get(code.status, SETTING)
    return RemoteCode(
        id=code.access_code_id,
        device_id=code.device_id,
        name=code.name,
        status=status,
        starts_at=parse_time(code.starts_at),
        ends_at=parse_time(code.ends_at),
        errors=tuple(e.error_code or e.message for e in code.errors),
    )


def _code(body: bytes) -> wire.AccessCode:
    found = wire.CODE.decode(body).access_code
    if found is None:
        raise ValueError("no access_code in the answer")
    return found


class DeviceBudget:
    """Seam's per-device limits, counted here before a call is sent: a burst of pushes to
    one lock is refused locally (``errors.RateLimited`` with the wait, nothing sent) and
    the push executor puts the task back for that long, instead of drawing 429s or holding
    a worker while it waits. One process pushes for a lock integration (its shard), so a
    local count is the whole count; a 429 from Seam (another client of the workspace) is
    still honoured by the client."""

    def __init__(
        self,
        limits: Mapping[str, int] | None = None,
        window_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = DEVICE_LIMITS if limits is None else limits
        self._window_s = DEVICE_WINDOW_S if window_s is None else window_s
        self._clock = clock
        self._calls: dict[tuple[str, str], deque[float]] = {}

    def take(self, device: str, action: str) -> None:
        limit = self._limits.get(action)
        if not limit:
            return
        now = self._clock()
        calls = self._calls.setdefault((device, action), deque())
        while calls and calls[0] <= now - self._window_s:
            calls.popleft()
        if len(calls) >= limit:
            wait = calls[0] + self._window_s - now
            raise errors.RateLimited(
                f"{action} on device {device}: {limit} per {self._window_s:g} s", retry_after=wait
            )
        calls.append(now)


class SeamAccessCodes:
    """``syncd.connectors.access.AccessCodes`` over Seam's RPC endpoints."""

    def __init__(self, client: PartnerClient, budget: DeviceBudget | None = None) -> None:
        self._client = client
        self._budget = budget or DeviceBudget()

    async def create(self, code: DesiredCode) -> RemoteCode:
        self._budget.take(code.device_id, "create")
        body = {
            "device_id": code.device_id,
            "name": code.name,
            "starts_at": seam_time(code.starts_at),
            "ends_at": seam_time(code.ends_at),
        }
        found = await self._client.post_rpc(
            "/access_codes/create",
            body,
            decode=_code,
            idempotent=False,
            headers={"Idempotency-Key": code.idempotency_key},
        )
        return remote(found)

    async def update(self, code_id: str, code: DesiredCode) -> RemoteCode:
        self._budget.take(code.device_id, "update")
        body = {
            "access_code_id": code_id,
            "starts_at": seam_time(code.starts_at),
            "ends_at": seam_time(code.ends_at),
        }
        found = await self._client.post_rpc("/access_codes/update", body, decode=_code, idempotent=True)
        return remote(found)

    async def delete(self, code_id: str, device_id: str) -> None:
        self._budget.take(device_id, "delete")
        try:
            await self._client.post_rpc(
                "/access_codes/delete", {"access_code_id": code_id}, decode=wire.OK.decode, idempotent=True
            )
        except errors.PartnerRejected as exc:
            if exc.status != 404:  # a code that is gone is deleted
                raise

    async def get(self, code_id: str) -> RemoteCode | None:
        try:
            found = await self._client.post_rpc(
                "/access_codes/get", {"access_code_id": code_id}, decode=_code, idempotent=True
            )
        except errors.PartnerRejected as exc:
            if exc.status == 404:
                return None
            raise
        return remote(found)

    async def list(self, device_id: str) -> AsyncIterator[RemoteCode]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"device_id": device_id, "limit": LIST_LIMIT}
            if cursor is not None:
                params["page_cursor"] = cursor
            page = await self._client.post_rpc(
                "/access_codes/list", params, decode=wire.CODES.decode, idempotent=True
            )
            for code in page.access_codes:
                yield remote(code)
            cursor = page.pagination.next_page_cursor
            if not page.pagination.has_next_page or not cursor:
                return


class SeamConnector:
    """A Seam integration: no resources to sync, access codes to push."""

    info: PartnerInfo = PARTNER

    def __init__(self, client: PartnerClient) -> None:
        self._client = client
        self.access_codes = SeamAccessCodes(client)

    def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        raise KeyError(f"seam syncs no {resource!r}: it pushes access codes")

    def normalizer(self, resource: str) -> Normalizer:
        raise KeyError(f"seam syncs no {resource!r}")

    def external_id(self, resource: str, raw: RawRecord) -> str | None:
        return None

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        return None

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        raise KeyError(f"seam syncs no {resource!r}")

    async def check_access(self) -> None:
        await self.device_ids()

    async def device_ids(self) -> list[str]:
        """The workspace's lock devices (what a ``locks.devices`` mapping may name)."""
        found = await self._client.post_rpc("/devices/list", {}, decode=wire.DEVICES.decode, idempotent=True)
        return [d.device_id for d in found.devices]

    async def rotate_secret(self, new_secret: str) -> None:
        raise errors.PartnerRejected("Seam API keys are replaced in the configuration, not rotated")
