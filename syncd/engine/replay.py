"""Dead-letter replay: fetch each open dead letter's record again and apply it.

A dead letter stays open until a clean copy of its record arrives. An incremental sync
brings one only when the partner bumps the record's update timestamp. After we ship an
adapter fix, or after the partner repairs a record without touching its timestamp, the
operator replays: every open dead letter of an integration x resource is fetched by id.
A clean record is upserted and its letter resolved. A record that is still bad gets its
attempts and reason updated. A record the partner no longer has is resolved: the
deletion sweep owns deletions.

Replay takes the same advisory lock as a sync run, so it never races one; it writes
through that session in batches (rows, letters and resolutions in one transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from syncd import errors
from syncd.connectors.base import Connector
from syncd.pipeline import RECORD_ERRORS, UNIDENTIFIED_PREFIX, dead_letter
from syncd.store.postgres import Store, SyncSession
from syncd.store.types import Batch, row_for

REPLAY_BATCH = 200
# What one id's GET may raise without the others' being wrong (the partner refused or
# failed that request, or its circuit is open).
FETCH_ERRORS = (errors.PartnerError, errors.CircuitOpen)


@dataclass
class ReplayResult:
    integration_id: str
    resource: str
    busy: bool = False  # a sync run holds the lock: nothing was done, try again later
    fixed: list[str] = field(default_factory=list)
    still_bad: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    # Letters whose record had no readable id: nothing to fetch, they stay open.
    unidentified: list[str] = field(default_factory=list)
    # Pushes asked for again (a refused access code): each letter resolves when its new
    # push succeeds. Only pushes have them.
    queued: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "integration": self.integration_id,
            "resource": self.resource,
            "busy": self.busy,
            "fixed": len(self.fixed),
            "still_bad": len(self.still_bad),
            "gone": len(self.gone),
            "unidentified": len(self.unidentified),
            **({"queued": self.queued} if self.queued else {}),
        }


async def replay(
    store: Store,
    connector: Connector,
    integration_id: str,
    resource: str,
    log: Any,
    *,
    limit: int = 10_000,
    only: set[str] | None = None,
) -> ReplayResult:
    """Replay up to ``limit`` open dead letters (or just the ids in ``only``)."""
    result = ReplayResult(integration_id, resource)
    async with store.sync_session(integration_id, resource) as session:
        if session is None:
            result.busy = True
            log.warning("replay_busy", integration=integration_id, resource=resource)
            return result
        ids = sorted(await session.open_dead_letters(limit))
        if only is not None:
            ids = [i for i in ids if i in only]
        await fetch_into(session, connector, resource, ids, result)
    log.info("replay_done", **result.to_json())
    return result


async def fetch_into(
    session: SyncSession,
    connector: Connector,
    resource: str,
    ids: list[str],
    result: ReplayResult,
    *,
    delete_gone: bool = False,
    concurrency: int = 1,
    failed: dict[str, Exception] | None = None,
) -> None:
    """Fetches each id and applies it through ``session`` in batches: a clean record is
    upserted (and its open dead letter resolved), a bad one dead-lettered. A record the
    partner no longer has resolves its letter; with ``delete_gone`` (a targeted fetch: the
    partner just told us it changed) it is also soft-deleted where the resource sweeps.

    Up to ``concurrency`` GETs are in flight (the partner client still holds each to the
    integration's rate budget). A partner error raises, unless ``failed`` is given: then
    the id and its error go there and the other ids are still applied."""
    normalize = connector.normalizer(resource)
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    for start in range(0, len(ids), REPLAY_BATCH):
        batch = Batch()
        gone: list[str] = []
        window = ids[start : start + REPLAY_BATCH]
        chunk = [i for i in window if not i.startswith(UNIDENTIFIED_PREFIX)]
        result.unidentified.extend(i for i in window if i.startswith(UNIDENTIFIED_PREFIX))
        fetched, errors_by_id = await _fetch_all(connector, resource, chunk, limiter)
        if errors_by_id:
            if failed is None:
                raise next(e for i in chunk if (e := errors_by_id.get(i)) is not None)
            failed.update(errors_by_id)
        for external_id in chunk:
            if external_id not in fetched:
                continue
            raw = fetched[external_id]
            if raw is None:
                result.gone.append(external_id)
                gone.append(external_id)
                batch.resolved.append(external_id)
                continue
            try:
                batch.rows.append(row_for(session.spec, normalize(raw), raw))
            except RECORD_ERRORS as exc:
                batch.dead_letters.append(dead_letter(connector, resource, raw, exc))
                result.still_bad.append(external_id)
                continue
            batch.resolved.append(external_id)
            result.fixed.append(external_id)
        await session.apply(batch)
        if delete_gone and gone:
            await session.soft_delete(gone)


async def _fetch_all(
    connector: Connector, resource: str, ids: list[str], limiter: anyio.CapacityLimiter
) -> tuple[dict[str, bytes | None], dict[str, Exception]]:
    """Each id's record (None: gone) or the partner error its GET ended with."""
    fetched: dict[str, bytes | None] = {}
    failed: dict[str, Exception] = {}

    async def get(external_id: str) -> None:
        async with limiter:
            try:
                fetched[external_id] = await connector.fetch_one(resource, external_id)
            except FETCH_ERRORS as exc:
                failed[external_id] = exc

    async with anyio.create_task_group() as tg:
        for external_id in ids:
            tg.start_soon(get, external_id)
    return fetched, failed
