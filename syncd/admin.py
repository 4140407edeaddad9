"""Operator commands that work on a stopped or running daemon's database: ``syncd status``,
``syncd dlq list``, ``syncd dlq replay`` and ``syncd history``.

They open the same database the daemon uses (the embedded one under ``state_dir`` when no
URL is configured, which then must not be running in another process) and print one line
per row, or JSON lines with ``--json`` for scripts.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from syncd import errors
from syncd.app import build_connectors, cipher_for, database, open_store
from syncd.config import Settings
from syncd.connectors.base import Connector
from syncd.engine.replay import ReplayResult, replay
from syncd.http.guards import Guards
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from syncd.store.resources import RESOURCES


def _ids(settings: Settings, integration: str | None) -> list[str]:
    known = [i.id for i in settings.integrations]
    if integration is None:
        return known
    if integration not in known:
        raise errors.ConfigError([("--integration", f"unknown integration {integration!r}")])
    return [integration]


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[Store]:
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
            print(json.dumps(row, default=_text))
        return
    widths = {c: max([len(c), *(len(_text(r.get(c))) for r in rows)]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(_text(row.get(c)).ljust(widths[c]) for c in columns).rstrip())


STATUS_COLUMNS = (
    "integration_id", "resource", "status", "last_outcome", "last_success_at", "next_due_at",
    "consecutive_failures", "dead_letters", "last_error",
)  # fmt: skip


async def status(settings: Settings, integration: str | None, as_json: bool) -> int:
    """Per integration x resource: health, last success, next run, open dead letters."""
    async with _store(settings) as store:
        rows = await store.sync_status(_ids(settings, integration))
    for row in rows:
        error = row.get("last_error")
        if isinstance(error, str) and not as_json:
            row["last_error"] = error if len(error) <= 80 else error[:77] + "..."
    _emit(rows, STATUS_COLUMNS, as_json)
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
        rows = await store.dead_letters(_ids(settings, integration), resource, limit)
    if not with_payload:
        for row in rows:
            row.pop("payload", None)
    _emit(rows, (*DLQ_COLUMNS, "payload") if with_payload else DLQ_COLUMNS, as_json)
    return 0


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


async def dlq_replay(
    settings: Settings,
    integration: str | None,
    resource: str | None,
    only: Sequence[str],
    limit: int,
    as_json: bool,
) -> int:
    """Exit 0 when every replayed record is now clean; 1 when some are still bad or busy."""
    log = get_logger()
    ids = _ids(settings, integration)
    results: list[ReplayResult] = []
    async with _drivers(settings, ids) as (store, _, connectors):
        letters = await store.dead_letters(ids, resource, limit)
        targets = sorted({(r["integration_id"], r["resource"]) for r in letters})
        for integration_id, res in targets:
            results.append(
                await replay(
                    store, connectors[integration_id], integration_id, res, log,
                    limit=limit, only=set(only) if only else None,
                )
            )  # fmt: skip
    _emit(
        [r.to_json() for r in results],
        ("integration", "resource", "fixed", "still_bad", "gone", "unidentified", "busy"),
        as_json,
    )
    return 1 if any(r.busy or r.still_bad for r in results) else 0


async def rotate_secret(settings: Settings, integration: str, new_secret: str) -> int:
    """Exit 0 when the new secret is stored and verified; 1 when the partner refused it or
    the verifying call failed (the previous secret is then back in place)."""
    (integration_id,) = _ids(settings, integration)
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


async def sync_now(settings: Settings, integration: str, resource: str | None) -> int:
    """Exit 0 when something was made due; 1 when nothing matched (resource not synced)."""
    (integration_id,) = _ids(settings, integration)
    async with _store(settings) as store:
        resources = await store.sync_now(integration_id, resource)
    if not resources:
        which = f" (no enabled resource {resource!r})" if resource else ""
        print(f"{integration_id}: nothing to sync{which}")
        return 1
    print(f"{integration_id}: {', '.join(resources)} due now; the owning daemon starts them within a second")
    return 0
