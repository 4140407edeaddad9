"""One sync run: partner pages -> canonical rows -> batches -> one transaction per batch.

    fetcher:  connector.stream()   pages, prefetched (PAGE_PREFETCH) while the
                 |                  previous page is being normalized
                 v
    producer: normalize, dead-letter, batch
                 |  bounded stream (pipeline_depth batches queued; 0: each
                 |  finished batch waits in the producer for a free lane)
                 v
    consumer: writer.apply(batch)   (rows + events + dead letters + checkpoint,
                                     one transaction), on up to write_lanes
                                     connections: a batch copies while the one
                                     before it upserts and commits (in order)

Three stages in one event loop: the partner prepares the next page while we normalize
this one, and we normalize the next batch while PostgreSQL writes the previous one. When
a later stage is slower its bounded stream blocks the earlier one (backpressure).
Memory is bounded by batch size x (pipeline depth + write lanes + 1), never by the dataset:
a lane holds a batch's rows until they are copied, the producer the batch it is building.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from typing import Any

import anyio
import msgspec
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from pydantic import ValidationError

from syncd.config import ResourceSettings
from syncd.connectors.base import Connector, Page, committed_hook
from syncd.errors import BatchAbandoned, StoreError
from syncd.models import MAX_ID_LENGTH
from syncd.observability import drift
from syncd.observability.metrics import Metrics
from syncd.store.postgres import BatchWriter, SyncSession, Turn
from syncd.store.types import (
    ApplyResult,
    Batch,
    DeadLetter,
    RawRecord,
    letter_payload,
    row_for,
    storable_text,
)

# Dead letters of records without a readable id: named by a digest of their bytes.
UNIDENTIFIED_PREFIX = "unidentified:"
# A sweep that would delete more than this share of live records is more likely a partner
# fault (a truncated listing) than a mass deletion: it is refused and reported instead.
MAX_SWEEP_DELETE_SHARE = 0.05
MIN_SWEEP_DELETE_ALLOWANCE = 10
# Pages requested ahead of normalization: hides the partner's response time (~1 ms per
# page even from the local simulator, otherwise on the critical path).
PAGE_PREFETCH = 2


@dataclass
class RunStats:
    pages: int = 0
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    dead_lettered: int = 0
    deleted: int = 0
    swept: bool = False
    interrupted: bool = False

    def add(self, result: ApplyResult) -> None:
        self.inserted += result.inserted
        self.updated += result.updated
        self.unchanged += result.unchanged
        self.dead_lettered += result.dead_lettered


@dataclass(frozen=True)
class PipelineOptions:
    batch_size: int = 5000
    pipeline_depth: int = 0
    write_lanes: int = 1
    max_batch_delay_s: float = 1.0
    sweep: bool = False


class _Batcher:
    """Accumulates normalized pages; one row per record id (the newest copy wins)."""

    def __init__(self, session: SyncSession, open_dead: set[str]) -> None:
        self._ts_index = session.spec.columns.index("source_updated_at")
        self._open_dead = open_dead
        self.reset()

    def reset(self) -> None:
        self.rows: dict[str, tuple[Any, ...]] = {}
        self.dead: dict[str, DeadLetter] = {}
        self.merges: dict[str, str] = {}  # new id -> old id, as the pages said
        self.checkpoint: dict[str, Any] | None = None
        self.pages = 0
        self.fetched = 0
        self.opened_at = time.monotonic()

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead)

    def add_row(self, row: tuple[Any, ...]) -> None:
        key = row[0]
        held = self.rows.get(key)
        if held is None or held[self._ts_index] < row[self._ts_index]:
            self.rows[key] = row
        self.dead.pop(key, None)

    def add_dead(self, letter: DeadLetter) -> None:
        if letter.external_id not in self.rows:
            self.dead[letter.external_id] = letter

    def take(self) -> Batch:
        resolved = [k for k in self.rows if k in self._open_dead] if self._open_dead else []
        self._open_dead.difference_update(resolved)
        # A record dead-lettered here and seen clean later in the run resolves its letter.
        self._open_dead.update(self.dead)
        batch = Batch(
            rows=list(self.rows.values()),
            dead_letters=list(self.dead.values()),
            resolved=resolved,
            merges=[(old, new) for new, old in self.merges.items()],
            checkpoint=self.checkpoint,
            pages=self.pages,
            fetched=self.fetched,
        )
        self.reset()
        return batch


# What a bad record raises: wire decoding (msgspec) or canonical validation (pydantic).
RECORD_ERRORS = (msgspec.MsgspecError, ValidationError, ValueError, TypeError, RecursionError)


def dead_letter(connector: Connector, resource: str, raw: RawRecord, exc: Exception) -> DeadLetter:
    # Text columns cannot hold NUL: a raw NUL byte (invalid JSON) is kept visible, escaped.
    payload = letter_payload(raw)
    if isinstance(exc, ValidationError):
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<record>'}: {e['msg']}" for e in exc.errors())
    else:
        reason = f"{type(exc).__name__}: {exc}"
    external_id = (connector.external_id(resource, raw) or "").replace("\x00", "")
    if not external_id or len(external_id) > MAX_ID_LENGTH:
        # No usable id: none readable, or one the canonical models refuse and too long for
        # the dead letters' unique index (its insert would fail the whole batch). Named by a
        # digest, stable across processes (hash() is not): the same broken record, seen
        # again, is the same open dead letter; the payload still shows what it carried.
        digest = hashlib.blake2b((external_id or payload).encode(), digest_size=6).hexdigest()
        external_id = UNIDENTIFIED_PREFIX + digest
    return DeadLetter(
        external_id=external_id, error_class="data", reason=storable_text(reason)[:2000], payload=payload
    )


async def run(
    session: SyncSession,
    connector: Connector,
    resource: str,
    settings: ResourceSettings,
    options: PipelineOptions,
    metrics: Metrics,
    log: Any,
    stop: anyio.Event,
    stats: RunStats | None = None,
) -> RunStats:
    """Sync ``resource`` from the session's checkpoint to the partner's present.

    When ``stop`` is set the run ends at the next page boundary, committing what it has
    (the daemon is draining); ``stats.interrupted`` then tells the caller.
    """
    partner = connector.info.name
    stats = stats if stats is not None else RunStats()
    normalize = connector.normalizer(resource)
    drifted = drift.signal_for(metrics, log)
    committed = committed_hook(connector)
    spec = session.spec
    checkpoint = await session.checkpoint()
    open_dead = await session.open_dead_letters()
    await session.start_run()
    send: ObjectSendStream[Batch]
    receive: ObjectReceiveStream[Batch]
    send, receive = anyio.create_memory_object_stream[Batch](max_buffer_size=options.pipeline_depth)

    def add_page(batcher: _Batcher, page: Page) -> None:
        dead_before = len(batcher.dead)
        media_type = page.media_type
        known_values = page.prenormalized if page.prenormalized is not None else [None] * len(page.records)
        for raw, known in zip(page.records, known_values, strict=True):
            try:
                row = row_for(spec, normalize(raw) if known is None else known, raw, media_type)
            except RECORD_ERRORS as exc:
                drifted.wire_error(partner, resource, exc)
                batcher.add_dead(dead_letter(connector, resource, raw, exc))
                continue
            batcher.add_row(row)
        if page.merged_from:
            batcher.merges.update(page.merged_from)
        batcher.checkpoint = page.checkpoint
        batcher.pages += 1
        batcher.fetched += len(page.records)
        metrics.pages.labels(partner, resource).inc()
        log.debug(
            "page_fetched", resource=resource, records=len(page.records), dead=len(batcher.dead) - dead_before
        )

    page_send: ObjectSendStream[Page]
    page_receive: ObjectReceiveStream[Page]
    page_send, page_receive = anyio.create_memory_object_stream[Page](max_buffer_size=PAGE_PREFETCH)

    async def fetch() -> None:
        async with page_send, aclosing(connector.stream(resource, checkpoint, settings)) as pages:
            async for page in pages:
                await page_send.send(page)
                if stop.is_set():
                    stats.interrupted = True  # pages already fetched are still committed
                    break

    async def produce() -> None:
        batcher = _Batcher(session, open_dead)
        async with send, page_receive:
            async for page in page_receive:
                add_page(batcher, page)
                full = len(batcher) >= options.batch_size or page.awaits_commit
                if full or time.monotonic() - batcher.opened_at >= options.max_batch_delay_s:
                    await send.send(batcher.take())
            if batcher.pages:
                await send.send(batcher.take())

    async def consume() -> None:
        # Batch n goes to writer n % lanes; Turns keep upserts and commits in order.
        lanes = options.write_lanes
        turns: deque[Turn] = deque(maxlen=lanes)

        async def free_lane() -> None:
            if len(turns) >= lanes:
                await turns[-lanes].finished.wait()  # that lane's previous batch

        async with receive, AsyncExitStack() as writers_open, anyio.create_task_group() as lanes_tg:
            writers = [session.writer]
            n = 0
            while True:
                # A free lane before taking the next batch: a batch held here would be one
                # more batch of rows in memory.
                await free_lane()
                try:
                    batch = await receive.receive()
                except anyio.EndOfStream:
                    break
                if n % lanes == len(writers):  # taken on the run's second batch: one-batch runs never do
                    try:
                        writers.append(await writers_open.enter_async_context(session.extra_writer()))
                    except StoreError as exc:
                        # The server refused one more connection (max_connections): the run
                        # goes on with the writers it has rather than fail.
                        log.warning("extra_writer_unavailable", resource=resource, error=str(exc))
                        lanes = len(writers)
                        await free_lane()
                after = turns[-1] if turns else None
                turn = Turn()
                turns.append(turn)
                lanes_tg.start_soon(apply_batch, writers[n % lanes], batch, turn, after)
                n += 1

    async def apply_batch(writer: BatchWriter, batch: Batch, turn: Turn, after: Turn | None) -> None:
        started = time.perf_counter()
        try:
            result = await writer.apply(batch, turn, after)
        except BatchAbandoned:
            return  # the earlier batch's own error ends the run
        if committed is not None:
            await committed(resource, batch.checkpoint)
        stats.add(result)
        stats.pages += batch.pages
        stats.fetched += batch.fetched
        _count(metrics, partner, resource, result)
        log.info(
            "page_applied",
            resource=resource,
            pages=batch.pages,
            records=batch.fetched,
            inserted=result.inserted,
            updated=result.updated,
            unchanged=result.unchanged,
            dead_lettered=result.dead_lettered,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            checkpoint=batch.checkpoint,
        )

    # Adapters report unknown enum values to the run's partner and resource (drift.bind).
    with drift.bind(drifted, partner, resource):
        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch)
            tg.start_soon(produce)
            tg.start_soon(consume)

        if options.sweep and not stats.interrupted:
            await _sweep(session, connector, resource, normalize, stats, metrics, log)
    return stats


async def _sweep(
    session: SyncSession,
    connector: Connector,
    resource: str,
    normalize: Any,
    stats: RunStats,
    metrics: Metrics,
    log: Any,
) -> None:
    """Soft-delete records the partner no longer lists, each confirmed by a direct GET."""
    ids = connector.live_ids(resource)
    if ids is None:
        return
    started = await session.sweep_begin()
    async for page in ids:
        await session.sweep_mark(page)
    live = await session.live_count()
    allowance = max(MIN_SWEEP_DELETE_ALLOWANCE, int(live * MAX_SWEEP_DELETE_SHARE))
    candidates = await session.sweep_candidates(started, allowance + 1)
    if len(candidates) > allowance:
        log.warning("sweep_refused", resource=resource, candidates=f">{allowance}", live=live)
        return
    gone: list[str] = []
    back = Batch()
    for external_id in candidates:
        raw = await connector.fetch_one(resource, external_id)
        if raw is None:
            gone.append(external_id)
            continue
        try:
            # ``fetch_one`` answers bytes alone: stored under the contract's default media type.
            back.rows.append(row_for(session.spec, normalize(raw), raw))
        except RECORD_ERRORS as exc:
            drift.signal_for(metrics, log).wire_error(connector.info.name, resource, exc)
            back.dead_letters.append(dead_letter(connector, resource, raw, exc))
    if back.rows or back.dead_letters:
        stats.add(await session.apply(back))
    stats.deleted = await session.soft_delete(gone)
    stats.swept = True
    metrics.records.labels(connector.info.name, resource, "deleted").inc(stats.deleted)
    log.info("sweep_done", resource=resource, candidates=len(candidates), deleted=stats.deleted)


def _count(metrics: Metrics, partner: str, resource: str, result: ApplyResult) -> None:
    for outcome, value in (
        ("inserted", result.inserted),
        ("updated", result.updated),
        ("unchanged", result.unchanged),
        ("dead_lettered", result.dead_lettered),
    ):
        if value:
            metrics.records.labels(partner, resource, outcome).inc(value)
    if result.dead_lettered:
        metrics.dead_letters.labels(partner, resource, "data").inc(result.dead_lettered)
