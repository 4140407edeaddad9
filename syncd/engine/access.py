"""Push tasks: make a lock provider's access codes match the reservations a lock integration follows.

A push task names (lock integration, source integration, reservation); the source's
statements wrote it in the transaction of the change (``resources.Follow``). It runs
against the desired state, not the change: it reads the reservation as it is now, works
out the code it calls for (``desired_code``), compares that with what was pushed
(``access_codes``) and makes the provider match, in these steps:

1. A create whose outcome is unknown (an intent without a partner id: the answer was lost,
   or the process died after asking) is reconciled first: the device's codes are listed
   and ours is found by its name. Never created twice on a guess.
2. No code wanted (cancelled, deleted, moved to an unmapped listing, not a live status):
   the pushed one is deleted (a code the provider no longer has counts as deleted).
3. A code wanted where none is: the intent (state ``setting``, the idempotency key, no
   partner id) commits first, then ``create``; its id is saved with the answer.
4. Another device (the stay moved listings): deleted there, created on the new one.
5. Other times: ``update`` (absolute values, so repeating it is harmless).
6. Until the lock confirms (``setting`` -> ``set``), the task asks again every
   ``settle_poll_s`` (a follow-up task of the same key); ``failed`` or no answer within
   ``settle_timeout_s`` is a dead letter and ``syncd_push_total{outcome="failed"}``.

Retries: the client retries a create only when the partner provably did not act
(``errors.NotSent``, 429); any other failure ends the attempt and the task is retried with
backoff, starting again from step 1. docs/pushes.md has the rules and their reasons.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syncd import errors
from syncd.config import LockSettings
from syncd.connectors.access import (
    FAILED,
    SET,
    AccessCodes,
    DesiredCode,
    RemoteCode,
    access_codes_of,
    acted_unknown,
)
from syncd.connectors.base import Connector
from syncd.engine.clock import Clock
from syncd.observability.metrics import Metrics
from syncd.store import access
from syncd.store.access import CodeRow, SourceRow
from syncd.store.postgres import Connection, Store
from syncd.store.resources import PUSH_PRIORITY
from syncd.store.tasks import NewTask, Task, TaskQueue


def _zone(name: str | None, fallback: str) -> ZoneInfo:
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _at(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), zone).astimezone(UTC)


def code_name(source_id: str, reservation_id: str) -> str:
    """The name a reservation's code carries at the provider: how a lost create's code is
    found again among the device's codes (one per reservation). Ids, no guest data."""
    return f"syncd:{source_id}:{reservation_id}"


def idempotency_key(
    lock_id: str,
    source_id: str,
    reservation_id: str,
    version: int,
    device: str,
    starts: datetime,
    ends: datetime,
) -> str:
    """Stable per (reservation, desired state): every attempt at one create sends the same
    key. The reservation's version is part of it: a stay cancelled and then restored with
    the same dates is a new code, not a repetition of the first."""
    text = "\0".join(
        (lock_id, source_id, reservation_id, str(version), device, starts.isoformat(), ends.isoformat())
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def stay_window(row: SourceRow, settings: LockSettings) -> tuple[datetime, datetime] | None:
    """When the code is valid, in UTC: check-in to check-out. A reservation with check-in and
    check-out times uses them; one with dates only starts on its check-in date at
    ``check_in_time`` and ends on its check-out date at ``check_out_time``, local times of
    the listing's time zone (else ``settings.timezone``). None when the dates are unknown
    or end before they start."""
    zone = _zone(row.timezone, settings.timezone)
    starts = row.check_in or (
        _at(row.check_in_date, settings.check_in_time, zone) if row.check_in_date else None
    )
    ends = row.check_out or (
        _at(row.check_out_date, settings.check_out_time, zone) if row.check_out_date else None
    )
    if starts is None or ends is None or ends <= starts:
        return None
    return starts.astimezone(UTC), ends.astimezone(UTC)


def desired_code(
    lock_id: str, source_id: str, reservation_id: str, row: SourceRow | None, settings: LockSettings
) -> DesiredCode | None:
    """The code a reservation calls for now, or None: gone, deleted, not in a live status,
    at a listing without a lock, or without usable dates."""
    if row is None or row.deleted or row.status not in settings.statuses:
        return None
    device = settings.devices.get(row.property_external_id)
    window = stay_window(row, settings)
    if device is None or window is None:
        return None
    starts, ends = window
    key = idempotency_key(lock_id, source_id, reservation_id, row.version, device, starts, ends)
    return DesiredCode(device, code_name(source_id, reservation_id), starts, ends, key)


class PushExecutor:
    """Runs push tasks for the lock integrations of this process."""

    def __init__(
        self,
        store: Store,
        queue: TaskQueue,
        connectors: Mapping[str, Connector],
        locks: Mapping[str, LockSettings],
        metrics: Metrics,
        log: Any,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._queue = queue
        self._connectors = connectors
        self._locks = locks
        self._metrics = metrics
        self._log = log
        self._clock = clock

    def handles(self, task: Task) -> str | None:
        """Why this process cannot run ``task``, or None."""
        connector = self._connectors.get(task.integration_id)
        if connector is None or access_codes_of(connector) is None:
            return "this integration's partner pushes no access codes"
        if task.integration_id not in self._locks:
            return "this integration has no locks section"
        if not isinstance(task.params.get("source"), str) and not task.params.get("codes"):
            return "a push task names its source integration, or the codes a webhook named"
        return None

    async def run(self, task: Task) -> None:
        connector = self._connectors[task.integration_id]
        provider = access_codes_of(connector)
        assert provider is not None
        for code_id in task.params.get("codes") or ():
            await self._settled(task, connector.info.name, provider, str(code_id))
        if isinstance(task.params.get("source"), str):
            source = str(task.params["source"])
            for reservation_id in task.ids:
                await self._push_one(task, connector.info.name, provider, source, reservation_id)
        await self._refresh_gauge(task.integration_id)

    async def _settled(self, task: Task, partner: str, provider: AccessCodes, code_id: str) -> None:
        """A webhook said code ``code_id`` settled: ask the provider and record it, only while
        the journal still waits for that very code with those very times (a reservation's
        push in progress decides everything else, and its follow-up asks again anyway)."""
        lock_id = task.integration_id
        call = _Calls(self._metrics, partner)
        async with self._store.leased_connection(task.lease) as conn:
            found = await access.code_by_partner_id(conn, lock_id, code_id)
            if found is None:
                return
            source, reservation_id, code = found
            if code.state != "setting":
                return
            remote = await call.run("get", provider.get(code_id))
            if remote is None or (remote.starts_at, remote.ends_at) != (code.starts_at, code.ends_at):
                return
            if remote.status not in (SET, FAILED):
                return
            log = self._log.bind(integration=lock_id, source=source, reservation=reservation_id, task=task.id)
            ref = f"{source}:{reservation_id}"
            await self._settle(task, conn, code, remote, self._locks[lock_id], call, log, ref, source=source)

    async def given_up(self, task: Task, exc: BaseException) -> None:
        """The task is out of attempts: each of its reservations gets a dead letter."""
        message = f"{type(exc).__name__}: {exc}"[:500]
        partner = self._connectors[task.integration_id].info.name
        async with self._store.connection() as conn:
            for reservation_id in task.ids:
                ref = f"{task.params.get('source')}:{reservation_id}"
                await access.dead_letter(conn, task.integration_id, ref, f"push given up: {message}")
        self._metrics.pushes.labels(partner, "push", "failed").inc()
        self._metrics.dead_letters.labels(partner, "access_codes", "push").inc()

    # -- one reservation -----------------------------------------------------------------

    async def _push_one(
        self, task: Task, partner: str, provider: AccessCodes, source: str, reservation_id: str
    ) -> None:
        lock_id = task.integration_id
        settings = self._locks[lock_id]
        call = _Calls(self._metrics, partner)
        log = self._log.bind(integration=lock_id, source=source, reservation=reservation_id, task=task.id)
        async with self._store.leased_connection(task.lease) as conn:

            async def save(row: CodeRow) -> CodeRow:
                await access.save_code(conn, lock_id, source, reservation_id, row)
                return row

            row = await access.source_row(conn, source, reservation_id)
            code = await access.code_row(conn, lock_id, source, reservation_id)
            desired = desired_code(lock_id, source, reservation_id, row, settings)
            name = code_name(source, reservation_id)
            ref = f"{source}:{reservation_id}"

            # 1. A create whose outcome is unknown: find out before anything else.
            if code is not None and code.partner_code_id is None and code.state == "setting":
                found = await call.find(provider, code.device_id, name)
                if found is None:
                    code = await save(replace(code, state="removed", last_error="create not carried out"))
                else:
                    log.info("access_code_adopted", device=code.device_id)
                    code = await save(
                        replace(
                            code,
                            partner_code_id=found.id,
                            starts_at=found.starts_at or code.starts_at,
                            ends_at=found.ends_at or code.ends_at,
                        )
                    )
            live = code is not None and code.state != "removed" and code.partner_code_id is not None

            # 2. No code wanted: revoke what was pushed.
            if desired is None:
                if code is not None and live:
                    assert code.partner_code_id is not None
                    await save(replace(code, state="removing"))
                    await call.run("delete", provider.delete(code.partner_code_id, code.device_id))
                    await save(replace(code, state="removed", last_error=None))
                    await access.resolve_dead_letter(conn, lock_id, ref)
                    log.info("access_code_removed", device=code.device_id)
                return

            # 4. The stay moved to another lock, or an operator replays a refused code: the
            # code goes first (a replay then asks for a new one).
            replaying = bool(task.params.get("retry"))
            retry = replaying and code is not None and code.state == FAILED
            if code is not None and live and (code.device_id != desired.device_id or retry):
                assert code.partner_code_id is not None
                if retry:  # a new code for the same stay: a new key, the same for each attempt
                    again = hashlib.sha256(f"{desired.idempotency_key}:{code.partner_code_id}".encode())
                    desired = replace(desired, idempotency_key=again.hexdigest()[:32])
                await save(replace(code, state="removing"))
                await call.run("delete", provider.delete(code.partner_code_id, code.device_id))
                code = await save(replace(code, state="removed", idempotency_key=desired.idempotency_key))
                live = False
            elif replaying and code is not None and not live and _same(code, desired):
                desired = replace(desired, idempotency_key=code.idempotency_key)  # the replay's key

            same_times = code is not None and (code.starts_at, code.ends_at) == (
                desired.starts_at,
                desired.ends_at,
            )
            if code is not None and live and same_times:
                if code.state in (SET, FAILED):
                    return  # the provider has what this stay calls for (or refused it: dead-lettered)
                assert code.partner_code_id is not None
                remote = await call.run("get", provider.get(code.partner_code_id))
            elif code is not None and live:
                # 5. Other times on the same lock.
                partner_id = code.partner_code_id
                assert partner_id is not None
                code = await save(_wanted(desired, partner_id))
                remote = await call.run("update", provider.update(partner_id, desired))
            else:
                # 3. A new code: the intent commits before the partner is asked.
                code = await save(_wanted(desired, None))
                remote = await call.run("create", provider.create(desired))
                code = await save(replace(code, partner_code_id=remote.id))
                log.info("access_code_created", device=desired.device_id)

            if remote is None:
                # The provider lost it (deleted by hand): made again by the next attempt.
                await save(replace(code, state="removed", last_error="the provider has no such code"))
                raise errors.PartnerUnavailable("access code vanished at the provider; creating it again")
            if (remote.starts_at, remote.ends_at) != (desired.starts_at, desired.ends_at) and (
                remote.starts_at is not None and remote.ends_at is not None
            ):
                await save(_wanted(desired, remote.id))
                remote = await call.run("update", provider.update(remote.id, desired))
            await self._settle(task, conn, code, remote, settings, call, log, ref)

    async def _settle(
        self,
        task: Task,
        conn: Connection,
        code: CodeRow,
        remote: RemoteCode,
        settings: LockSettings,
        call: _Calls,
        log: Any,
        ref: str,
        source: str | None = None,
    ) -> None:
        lock_id = task.integration_id
        source = source or str(task.params["source"])
        reservation_id = ref.split(":", 1)[1]
        if remote.status == SET:
            await access.save_code(
                conn, lock_id, source, reservation_id, replace(code, state=SET, last_error=None)
            )
            await access.resolve_dead_letter(conn, lock_id, ref)
            call.count("settle", "ok")
            log.info("access_code_set", device=code.device_id)
            return
        if remote.status == FAILED or code.pending_s >= settings.settle_timeout_s:
            reason = ", ".join(remote.errors) or f"not set on the lock within {settings.settle_timeout_s:g} s"
            await access.save_code(
                conn, lock_id, source, reservation_id, replace(code, state=FAILED, last_error=reason[:500])
            )
            await access.dead_letter(conn, lock_id, ref, f"access code failed on {code.device_id}: {reason}")
            call.count("settle", "failed")
            self._metrics.dead_letters.labels(call.partner, "access_codes", "push").inc()
            log.warning("access_code_failed", device=code.device_id, reason=reason[:200])
            return
        # Still setting: ask again later (a task of the same key, written before this one ends).
        await access.save_code(conn, lock_id, source, reservation_id, replace(code, state="setting"))
        now = await self._clock.now() if self._clock is not None else await conn.fetchval("SELECT now()")
        follow_up = NewTask(
            lock_id,
            task.resource,
            "push",
            PUSH_PRIORITY,
            task.key,
            {"source": source, "ids": [reservation_id]},
            delay_s=settings.settle_poll_s,
        )
        async with conn.transaction():
            await self._queue.enqueue([follow_up], now, conn)

    async def _refresh_gauge(self, lock_id: str) -> None:
        counts = (await access.counts(self._store, [lock_id])).get(lock_id, {})
        for state in access.STATES:
            self._metrics.access_codes.labels(lock_id, state).set(counts.get(state, 0))


def _same(code: CodeRow, desired: DesiredCode) -> bool:
    return (code.device_id, code.starts_at, code.ends_at) == (
        desired.device_id,
        desired.starts_at,
        desired.ends_at,
    )


def _wanted(desired: DesiredCode, partner_code_id: str | None) -> CodeRow:
    return CodeRow(
        desired.device_id,
        partner_code_id,
        desired.idempotency_key,
        "setting",
        desired.starts_at,
        desired.ends_at,
    )


class _Calls:
    """Partner calls of one push, each counted in ``syncd_push_total`` by its outcome."""

    def __init__(self, metrics: Metrics, partner: str) -> None:
        self._metrics = metrics
        self.partner = partner

    def count(self, action: str, outcome: str) -> None:
        self._metrics.pushes.labels(self.partner, action, outcome).inc()

    async def run(self, action: str, call: Any) -> Any:
        try:
            result = await call
        except errors.PartnerError as exc:
            if isinstance(exc, errors.PartnerRejected):
                outcome = "rejected"
            elif acted_unknown(exc):
                outcome = "ambiguous"
            else:
                outcome = "retried"
            self.count(action, outcome)
            raise
        self.count(action, "ok")
        return result

    async def find(self, provider: AccessCodes, device_id: str, name: str) -> RemoteCode | None:
        found = None
        try:
            async for remote in provider.list(device_id):
                if remote.name == name and found is None:
                    found = remote
        except errors.PartnerError:
            self.count("list", "retried")
            raise
        self.count("list", "ok")
        return found
