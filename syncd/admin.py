"""Operator commands that work on a stopped or running daemon's database: ``syncd status``,
``syncd sync-now``, ``syncd tasks``, ``syncd dlq list`` and ``syncd dlq replay``; the same
functions serve ``/admin/*`` over HTTP (``syncd.web.admin``); ``syncd history``.

They open the same database the daemon uses (the embedded one under ``state_dir`` when no
URL is configured, which then must not be running in another process) and print one line
per row, or JSON lines with ``--json`` for scripts. A config that names only the database
is enough: the integrations are the ones the daemons registered there. Only ``dlq replay``
and ``rotate-secret`` need an integration's partner settings and credentials.

The functions without printing (``select``, ``queue_sync``, ``task_rows``, ...) take an
open store and return JSON-safe rows; the printing ones open the store and print.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from syncd import errors
from syncd.config import Settings
from syncd.connectors.base import Connector, code_exchange, consent_url
from syncd.engine.replay import ReplayResult, replay
from syncd.observability.logging import get_logger
from syncd.store import access
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from syncd.store.resources import RESOURCES
from syncd.store.tasks import Priority, TaskQueue, priority_name

TASK_STATES = ("pending", "running", "done", "failed", "skipped", "expired", "dead", "lost")


class UnknownIntegration(errors.ConfigError):
    """No integration of that id is configured or registered in the database."""

    def __init__(self, integration: str, known: Sequence[str]) -> None:
        self.integration = integration
        super().__init__(
            [("--integration", f"unknown integration {integration!r} (known: {', '.join(known) or 'none'})")]
        )


async def known_integrations(store: Store, settings: Settings) -> list[str]:
    """The configured integrations and every one a daemon registered in the database."""
    return sorted({i.id for i in settings.integrations} | set(await store.integration_ids()))


async def select(store: Store, settings: Settings, integration: str | None) -> list[str]:
    """Every known integration, or just ``integration`` (``UnknownIntegration`` if unknown)."""
    known = await known_integrations(store, settings)
    if integration is None:
        return known
    if integration not in known:
        raise UnknownIntegration(integration, known)
    return [integration]


def json_default(value: Any) -> Any:
    """What ``json.dumps`` cannot encode itself: timestamps as ISO 8601, anything else as text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def dumps(value: Any) -> str:
    """One JSON document: a ``--json`` line, or an /admin response body."""
    return json.dumps(value, default=json_default)


async def queue_sync(store: Store, integration_id: str, resource: str | None) -> list[str]:
    """A user-priority sync task per enabled resource (coalesced into a pending one); the
    NOTIFY wakes the daemon that owns the integration. The resources queued, [] if none."""
    return await store.sync_now(integration_id, resource, Priority.USER)


async def dead_letter_rows(
    store: Store, integration_ids: Sequence[str], resource: str | None, limit: int, with_payload: bool
) -> list[dict[str, Any]]:
    rows = await store.dead_letters(integration_ids, resource, limit)
    if not with_payload:
        for row in rows:
            row.pop("payload", None)
    return rows


async def task_rows(
    store: Store, integration_ids: Sequence[str], state: str | None, limit: int
) -> list[dict[str, Any]]:
    """Tasks newest first, with the priority's name beside its number."""
    rows = await TaskQueue(store).list(integration_ids, state, limit)
    for row in rows:
        row["priority_name"] = priority_name(row["priority"])
    return rows


async def replay_letters(
    store: Store,
    connectors: Mapping[str, Connector],
    integration_ids: Sequence[str],
    resource: str | None,
    only: Sequence[str],
    limit: int,
    log: Any,
) -> list[ReplayResult]:
    """Replays the open dead letters of ``integration_ids`` (each must have a connector)."""
    results: list[ReplayResult] = []
    letters = await store.dead_letters(integration_ids, resource, limit)
    for integration_id, res in sorted({(r["integration_id"], r["resource"]) for r in letters}):
        if res == access.DEAD_LETTER_RESOURCE:
            # A refused access code is not fetched: its push is asked for again.
            queued = await access.replay_push_letters(store, integration_id, only or None, limit)
            results.append(ReplayResult(integration_id, res, queued=queued))
            log.info("push_replay_queued", integration=integration_id, pushes=queued)
            continue
        results.append(
            await replay(
                store, connectors[integration_id], integration_id, res, log,
                limit=limit, only=set(only) if only else None,
            )
        )  # fmt: skip
    return results


# --- the commands -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
    # syncd.app serves /admin through syncd.web.admin, which imports this module.
    from syncd.app import database, open_store

    log = get_logger()
    async with database(settings, log) as dsn, open_store(settings, dsn) as store:
        yield store


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(dumps(row))
        return
    widths = {c: max([len(c), *(len(_text(r.get(c))) for r in rows)]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(_text(row.get(c)).ljust(widths[c]) for c in columns).rstrip())


def _short(rows: list[dict[str, Any]], key: str, as_json: bool) -> None:
    """Long errors cut to one table cell (JSON keeps them whole)."""
    for row in rows:
        error = row.get(key)
        if isinstance(error, str) and not as_json:
            row[key] = error if len(error) <= 80 else error[:77] + "..."


STATUS_COLUMNS = (
    "integration_id", "resource", "status", "last_outcome", "last_success_at", "next_due_at",
    "consecutive_failures", "dead_letters", "last_error",
)  # fmt: skip


ACCESS_CODE_COLUMNS = ("integration_id", "follows", *access.STATES)


async def status(settings: Settings, integration: str | None, as_json: bool) -> int:
    """Per integration x resource: health, last success, next run, open dead letters; then,
    for lock integrations, their access codes by state (never a code)."""
    async with _store(settings) as store:
        ids = await select(store, settings, integration)
        rows = await store.sync_status(ids)
        follows = {
            i.id: i.locks.follows for i in settings.integrations if i.locks is not None and i.id in ids
        }
        counts = await access.counts(store, list(follows)) if follows else {}
    _short(rows, "last_error", as_json)
    _emit(rows, STATUS_COLUMNS, as_json)
    if follows:
        codes = [
            {
                "integration_id": lock,
                "follows": source,
                **{s: counts.get(lock, {}).get(s, 0) for s in access.STATES},
            }
            for lock, source in sorted(follows.items())
        ]
        if as_json:
            for row in codes:
                print(dumps({"access_codes": row}))
        else:
            print("\nACCESS CODES")
            _emit(codes, ACCESS_CODE_COLUMNS, as_json)
    return 0


DLQ_COLUMNS = ("integration_id", "resource", "external_id", "attempts", "last_seen_at", "reason")


async def dlq_list(
    settings: Settings,
    integration: str | None,
    resource: str | None,
    limit: int,
    with_payload: bool,
    as_json: bool,
) -> int:
    async with _store(settings) as store:
        ids = await select(store, settings, integration)
        rows = await dead_letter_rows(store, ids, resource, limit, with_payload)
    _emit(rows, (*DLQ_COLUMNS, "payload") if with_payload else DLQ_COLUMNS, as_json)
    return 0


def _configured(settings: Settings, integration: str | None) -> list[str]:
    """Integrations this config can drive: a partner call needs their settings and credentials."""
    configured = [i.id for i in settings.integrations]
    if integration is None:
        return configured
    if integration not in configured:
        raise errors.ConfigError(
            [
                (
                    "--integration",
                    f"{integration!r} is not in this config: calling its partner needs its "
                    "credentials (POST /admin/dlq/replay asks the daemon that syncs it)",
                )
            ]
        )
    return [integration]


HISTORY_COLUMNS = ("occurred_at", "external_id", "kind", "version", "source_updated_at", "changes")


def change_text(changed_fields: Sequence[str] | None, changes: Mapping[str, Sequence[Any]] | None) -> str:
    """``field: old -> new`` per changed field, in the model's order (``changed_fields``),
    values as JSON: a string is quoted, a missing value is ``null``."""
    if not changes:
        return ""
    order = [f for f in changed_fields or () if f in changes]
    order += sorted(f for f in changes if f not in order)
    return "; ".join(
        f"{name}: {json.dumps(changes[name][0])} -> {json.dumps(changes[name][1])}" for name in order
    )


async def history(
    settings: Settings, integration: str, resource: str, external_id: str, as_json: bool
) -> int:
    """Exit 0 with the entity's events, oldest first (across its merges); 1 when it has none."""
    if integration not in {i.id for i in settings.integrations}:
        raise errors.ConfigError([("INTEGRATION", f"unknown integration {integration!r}")])
    if resource not in RESOURCES:
        known = ", ".join(sorted(RESOURCES))
        raise errors.ConfigError([("RESOURCE", f"unknown resource {resource!r} (one of: {known})")])
    async with _store(settings) as store:
        events = await store.history(integration, resource, external_id)
    if not events:
        print(f"syncd: {integration} {resource} {external_id}: no history (never synced)", file=sys.stderr)
        return 1
    rows: list[dict[str, Any]] = []
    for event in events:
        changes = event["changes"]
        row = {
            "occurred_at": event["occurred_at"],
            "external_id": event["external_id"],
            "kind": event["kind"],
            "version": event["version"],
            "source_updated_at": event["source_updated_at"],
            "changes": changes if as_json else change_text(event["changed_fields"], changes),
        }
        # The partner's timestamp in full (it is what last write wins compares); when the
        # change was applied to the second, except in JSON.
        partner_at = event["source_updated_at"]
        row["source_updated_at"] = partner_at.isoformat() if partner_at is not None else None
        if as_json:
            row["occurred_at"] = event["occurred_at"].isoformat()
        rows.append(row)
    _emit(rows, HISTORY_COLUMNS, as_json)
    return 0


@contextlib.asynccontextmanager
async def _drivers(
    settings: Settings, integration_ids: Sequence[str]
) -> AsyncIterator[tuple[Store, CredentialStore, dict[str, Connector]]]:
    """The store and the listed integrations' drivers, wired as the daemon wires them."""
    from syncd.app import build_connectors, cipher_for, database, open_store
    from syncd.http.guards import Guards
    from syncd.http.transport import Transports
    from syncd.observability.metrics import Metrics

    log = get_logger()
    metrics = Metrics()
    async with (
        database(settings, log) as dsn,
        open_store(settings, dsn) as store,
        Transports(max_connections=8) as transports,
    ):
        credentials = CredentialStore(store, cipher_for(settings))
        guards = Guards(metrics, log)
        yield (
            store,
            credentials,
            build_connectors(settings, integration_ids, transports, credentials, metrics, log, guards),
        )


REPLAY_COLUMNS = ("integration", "resource", "fixed", "still_bad", "gone", "unidentified", "busy", "queued")


async def dlq_replay(
    settings: Settings,
    integration: str | None,
    resource: str | None,
    only: Sequence[str],
    limit: int,
    as_json: bool,
) -> int:
    """Exit 0 when every replayed record is now clean; 1 when some are still bad or busy."""
    ids = _configured(settings, integration)
    async with _drivers(settings, ids) as (store, _, connectors):
        results = await replay_letters(store, connectors, ids, resource, only, limit, get_logger())
    _emit([r.to_json() for r in results], REPLAY_COLUMNS, as_json)
    return 1 if any(r.busy or r.still_bad for r in results) else 0


async def rotate_secret(settings: Settings, integration: str, new_secret: str) -> int:
    """Exit 0 when the new secret is stored and verified; 1 when the partner refused it or
    the verifying call failed (the previous secret is then back in place)."""
    (integration_id,) = _configured(settings, integration)
    async with _drivers(settings, [integration_id]) as (_, credentials, connectors):
        try:
            await connectors[integration_id].rotate_secret(new_secret)
        except errors.PartnerError as exc:
            print(f"{integration_id}: the new secret was not adopted ({type(exc).__name__}: {exc})")
            return 1
        stored = await credentials.load_token(integration_id)
    version = stored.secret_version if stored is not None else "?"
    print(f"{integration_id}: new client secret stored (encrypted) and verified; secret_version {version}")
    return 0


async def authorize(settings: Settings, integration: str, code: str) -> int:
    """Exit 0 when the partner exchanged the one-time ``code`` for a refresh token (stored
    encrypted); ConfigError (exit 2) when it refused it, the code was sent before, or the
    integration's partner takes no authorization code."""
    (integration_id,) = _configured(settings, integration)
    async with _drivers(settings, [integration_id]) as (store, _, connectors):
        exchange = code_exchange(connectors[integration_id])
        if exchange is None:
            raise errors.ConfigError(
                [("INTEGRATION", f"{integration_id!r}: its partner takes no authorization code")]
            )
        try:
            await exchange(code)
        except errors.AuthFailed as exc:
            raise errors.ConfigError(
                [
                    (
                        "--code-file",
                        f"{exc}; codes are single-use and short-lived: get a new one and run this again",
                    )
                ]
            ) from None
        # Un-parks an integration an authentication failure parked: its grant is new.
        await store.set_integration_status(integration_id, "active", None)
    print(f"{integration_id}: authorized; refresh token stored (encrypted), the daemon uses it from now on")
    return 0


async def authorization_url(
    settings: Settings, integration: str, redirect_uri: str, state: str, scope: str | None
) -> int:
    """Print the partner's consent page for the integration's app: the operator opens it,
    consents, and finds the one-time code in the redirect (``code=...``, with ``state``)."""
    (integration_id,) = _configured(settings, integration)
    async with _drivers(settings, [integration_id]) as (_, _, connectors):
        url = consent_url(connectors[integration_id])
    if url is None:
        raise errors.ConfigError(
            [("INTEGRATION", f"{integration_id!r}: its partner takes no authorization code")]
        )
    print(url(redirect_uri, state, scope))
    print(f"state: {state} (the redirect carries it back with the code)")
    print(f"then: syncd authorize {integration_id} --code-file FILE_WITH_THE_CODE")
    return 0


async def sync_now(settings: Settings, integration: str, resource: str | None) -> int:
    """Exit 0 when a sync task was queued; 1 when nothing matched (resource not synced)."""
    async with _store(settings) as store:
        (integration_id,) = await select(store, settings, integration)
        resources = await queue_sync(store, integration_id, resource)
    if not resources:
        which = f" (no enabled resource {resource!r})" if resource else ""
        print(f"{integration_id}: nothing to sync{which}")
        return 1
    print(
        f"{integration_id}: queued a sync of {', '.join(resources)} at priority user "
        "(syncd tasks --state pending shows it); the owning daemon starts it within a second"
    )
    return 0


TASK_COLUMNS = (
    "id", "integration_id", "resource", "kind", "priority_name", "state", "attempts", "not_before",
    "finished_at", "lease_owner", "last_error",
)  # fmt: skip


async def tasks(
    settings: Settings, state: str | None, integration: str | None, limit: int, as_json: bool
) -> int:
    """The task queue, newest first: pending, running and recently finished tasks."""
    async with _store(settings) as store:
        rows = await task_rows(store, await select(store, settings, integration), state, limit)
    _short(rows, "last_error", as_json)
    _emit(rows, TASK_COLUMNS, as_json)
    return 0
