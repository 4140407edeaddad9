"""Values exchanged with the store; no asyncpg here so the pipeline can build them freely."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from pydantic import BaseModel

from syncd.models import base_type, field_names
from syncd.observability.logging import redact_text
from syncd.store.queries import QUERIES
from syncd.store.resource_sql import ResourceSQL, render
from syncd.store.resources import RESOURCES, Resource

# A partner record's exact bytes, stored verbatim whatever their format: ``bytes``, or a
# ``msgspec.Raw`` slice of the page it came in (zero-copy; msgspec's stubs type it as bytes,
# but at run time it only offers the buffer protocol: take ``bytes(raw)`` before using
# bytes methods on it).
RawRecord = bytes | msgspec.Raw
# The media type of a record's bytes when its connector does not say (``Page.media_type``).
JSON = "application/json"

MAX_DEAD_LETTER_PAYLOAD = 64 * 1024


StagingRow = Callable[[tuple[Any, ...], RawRecord, str], tuple[Any, ...]]


def staging_row(model: type[BaseModel]) -> StagingRow:
    """(canonical values, raw, media type) -> the row COPY sends to the model's staging table.

    Money travels as text, cast back to numeric where the upsert writes it
    (resource_queries.sql): asyncpg's binary numeric encoder takes the Decimal apart in
    Python objects (``as_tuple``, then digit by digit), ~1 µs a value, a twentieth of the
    daemon's CPU per listing; ``str()`` costs a tenth of that and PostgreSQL parses the
    text as cheaply as the binary form. Generated, like ``models.canonical_check``:
    unpacking by position costs barely more than ``(*values, raw, media_type)``, where a
    comprehension over the fields costs several times as much."""
    money = [n for n, info in enumerate(model.model_fields.values()) if base_type(info.annotation) is Decimal]
    if not money:
        return lambda values, raw, media_type: (*values, raw, media_type)
    names = [f"v{n}" for n in range(len(model.model_fields))]
    items = [f"None if {v} is None else str({v})" if n in money else v for n, v in enumerate(names)]
    source = (
        f"def row(values, raw, media_type):\n    {', '.join(names)}, = values\n"
        f"    return ({', '.join(items)}, raw, media_type)\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<staging_row {model.__name__}>", "exec"), namespace)
    row: StagingRow = namespace["row"]
    return row


@dataclass(frozen=True)
class TableSpec:
    """How one canonical resource is staged and written: its statements, rendered once."""

    definition: Resource
    sql: ResourceSQL = field(init=False, repr=False, compare=False)
    # The staging table's columns: the model's fields in their order, then ``raw`` and
    # ``raw_type``.
    columns: tuple[str, ...] = field(init=False)
    stage: StagingRow = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sql", render(self.definition))
        object.__setattr__(self, "columns", (*field_names(self.model), "raw", "raw_type"))
        object.__setattr__(self, "stage", staging_row(self.model))

    @property
    def resource(self) -> str:
        return self.definition.name

    @property
    def model(self) -> type[BaseModel]:
        return self.definition.model


TABLES: dict[str, TableSpec] = {name: TableSpec(r) for name, r in RESOURCES.items()}


def create_staging_tables() -> str:
    """Every resource's staging table and the sweep's id set: run on each store connection
    that syncs (temporary tables are per connection)."""
    return "\n".join([*(spec.sql.create_staging for spec in TABLES.values()), QUERIES["create_seen_ids"]])


@dataclass(frozen=True)
class DeadLetter:
    external_id: str
    error_class: str
    reason: str
    payload: str | None


@dataclass
class Batch:
    """Rows of one or more pages plus the checkpoint that follows the last of them."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)  # ids whose open dead letters are now fixed
    # (old id, new id) of records the partner re-identified (``Page.merged_from``), in the
    # order it said so: applied before the rows, in the batch's transaction.
    merges: list[tuple[str, str]] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    pages: int = 0
    fetched: int = 0
    # A child resource's batch: the parents whose every child it holds (their rows not in
    # it are soft-deleted in its transaction: resource_queries.sql sweep_children).
    parents: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead_letters)


@dataclass(frozen=True)
class ApplyResult:
    inserted: int
    updated: int
    unchanged: int
    dead_lettered: int


@dataclass(frozen=True)
class StoredToken:
    """A credentials row, decrypted."""

    access_token: str | None
    token_type: str | None
    expires_at: datetime | None
    refresh_token: str | None
    rotation_version: int
    client_secret: str | None = None  # set once a rotation stored one; else the config's
    previous_client_secret: str | None = None
    secret_version: int = 0
    # Fingerprint of the configured secret the rotation replaced (see ClientCredentials).
    rotated_over_sha256: str | None = None
    issued_at: datetime | None = None  # when the access token came back from the partner
    # When the partner refused the refresh token (re-authorization needed), else None.
    grant_refused_at: datetime | None = None


@dataclass(frozen=True)
class Schedule:
    integration_id: str
    resource: str
    interval_s: float
    next_due_at: datetime
    consecutive_failures: int


def storable_text(text: str) -> str:
    """Partner-influenced text (error messages, dead-letter payloads) as a text column can
    hold it and an operator may see it: secrets masked, NUL shown as its JSON escape."""
    return redact_text(text).replace("\x00", "\\u0000")


def row_for(
    spec: TableSpec, values: tuple[Any, ...], raw: RawRecord, media_type: str = JSON
) -> tuple[Any, ...]:
    """Staging-table row of canonical values (in field order, as ``TableSpec.columns``),
    then ``raw`` and its media type. ``raw`` goes to a bytea column: stored as it came,
    whatever its format or encoding."""
    return spec.stage(values, raw, media_type)


def letter_payload(raw: RawRecord) -> str:
    """A record's bytes as its dead letter shows them: the first 64 KB, bytes that are not
    UTF-8 replaced, NUL as its JSON escape."""
    head = bytes(memoryview(raw)[:MAX_DEAD_LETTER_PAYLOAD])
    return storable_text(head.decode(errors="replace"))


def without_nul(rows: list[tuple[Any, ...]]) -> bool:
    """Drop NUL characters from every string of ``rows`` (in place); True if any had one.

    PostgreSQL text cannot hold NUL. In JSON it arrives as the escape ``\\u0000``, which
    the ``raw`` column (bytea) keeps as sent; the canonical columns lose the character.
    """
    changed = False
    for n, row in enumerate(rows):
        if any(isinstance(v, str) and "\x00" in v for v in row):
            rows[n] = tuple(v.replace("\x00", "") if isinstance(v, str) else v for v in row)
            changed = True
    return changed
