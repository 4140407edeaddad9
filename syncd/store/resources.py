"""Canonical resources: each names its model, and its table's columns follow from it.

A resource's statements (staging table, upsert, first-sync insert, sweep) are rendered
from these columns once, at import (``syncd.store.resource_sql``). A new resource costs
its model, its CREATE TABLE in schema.sql (named in ``syncd_resource_tables()`` there) and
one entry in ``RESOURCES``; tests/integration/store/test_resource_schema.py holds
schema.sql to the models.
"""

from __future__ import annotations

import enum
import re
import types
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel

from syncd.models import CalendarDay, Photo, Property, Reservation, SqlType

# Python type of a canonical field -> its column type. A field may say otherwise with
# ``models.SqlType`` (``bedrooms real``).
_SQL_TYPES: dict[Any, str] = {
    str: "text",
    int: "integer",
    float: "double precision",
    bool: "boolean",
    Decimal: "numeric(14, 2)",  # models.MAX_MONEY
    AwareDatetime: "timestamptz",
    datetime: "timestamptz",
    date: "date",
}
# Money crosses COPY as text and is cast where it is written: asyncpg's binary numeric
# encoder takes each Decimal apart in Python objects, ``str()`` costs a tenth of that.
_STAGED_AS_TEXT = (Decimal,)
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Column:
    """A canonical field as a column of its resource's table and staging table."""

    name: str
    sql_type: str
    nullable: bool
    staged_type: str  # the staging table's type: ``sql_type`` unless it crosses as text
    collation: str | None = None

    @property
    def written(self) -> str:
        """The expression that reads this column from the staging table for the upsert."""
        return self.name if self.staged_type == self.sql_type else f"{self.name}::{self.sql_type}"


def _optional(annotation: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed): ``int | None`` -> (int, True); any other
    union stays as it is, and has no column type."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return annotation, False
    args = [a for a in get_args(annotation) if a is not type(None)]
    nullable = len(args) < len(get_args(annotation))
    return (args[0] if len(args) == 1 else annotation), nullable


def column_of(name: str, annotation: Any, metadata: list[Any]) -> Column:
    base, nullable = _optional(annotation)
    declared = next((m for m in metadata if isinstance(m, SqlType)), None)
    if declared is not None:
        sql_type, collation = declared.name, declared.collation
    elif isinstance(base, type) and issubclass(base, enum.Enum):
        sql_type, collation = "text", None  # its value, as the model's str enums hold it
    elif base in _SQL_TYPES:
        sql_type, collation = _SQL_TYPES[base], None
    else:
        raise TypeError(f"{name}: no column type for {annotation!r}; declare one with models.SqlType")
    staged = "text" if base in _STAGED_AS_TEXT else sql_type
    return Column(name, sql_type, nullable, staged, collation)


def columns_of(model: type[BaseModel]) -> tuple[Column, ...]:
    """The model's fields as columns, in field order (the order canonical values travel in)."""
    return tuple(column_of(name, info.annotation, info.metadata) for name, info in model.model_fields.items())


# The priority of child tasks (``tasks.Priority.LOW``: work nobody waits for), written into
# the parent's upsert; tests/unit/test_resources.py holds the two equal.
CHILD_PRIORITY = 30


@dataclass(frozen=True)
class Cascade:
    """A child resource's tie to its parent: a sync batch that creates a parent row, or
    changes one of its ``triggers`` (canonical fields of the parent), enqueues a child task
    for that parent in the batch's own transaction (resource_queries.sql: cascade), when
    the integration syncs the child resource. ``key``: the child's column naming its
    parent's external_id. The child task fetches the parent's children
    (``Connector.stream_children``); those it no longer has are soft-deleted."""

    parent: str
    key: str
    triggers: tuple[str, ...]


# The priority of push tasks (``tasks.Priority.WEBHOOK``): a guest at the door waits on
# them, and they are few and small beside the syncs of a busy queue (the urgent slots take
# them too); tests/unit/test_resources.py holds the two equal.
PUSH_PRIORITY = 10


@dataclass(frozen=True)
class Follow:
    """Other integrations may follow this resource's rows (a lock provider follows a PMS's
    reservations: ``store.followers``). A batch, a targeted fetch or the deletion sweep that
    creates a row, deletes it, or changes one of its ``triggers`` enqueues a ``push`` task for
    each follower whose keys hold the row's ``key`` column, in the statement that writes the
    row (resource_queries.sql: follow). A row whose ``key`` itself changed is pushed to every
    follower: the one that followed it under its old key revokes what it pushed."""

    key: str
    triggers: tuple[str, ...]


@dataclass(frozen=True)
class Resource:
    """A canonical resource: what adapters produce for it and where the store keeps it.

    ``sweep``: the deletion sweep may soft-delete its rows (a record the partner no longer
    lists is gone). It runs only for connectors that list every live id of the resource
    (``Connector.live_ids``); the others answer None and nothing is swept."""

    name: str
    model: type[BaseModel]
    table: str
    sweep: bool = False
    cascade: Cascade | None = None
    follow: Follow | None = None

    def __post_init__(self) -> None:
        for what in (self.name, self.table):
            if not _NAME.match(what):  # both are written into SQL as they are
                raise ValueError(f"resource and table names are lower-case identifiers, not {what!r}")
        fields = self.model.model_fields
        for required in ("external_id", "source_updated_at"):
            if required not in fields:
                raise TypeError(f"{self.model.__name__} has no {required}: every canonical record does")
        if self.cascade is not None and self.cascade.key not in fields:
            raise TypeError(f"{self.model.__name__} has no {self.cascade.key}, its cascade's parent key")
        if self.follow is not None:
            unknown = {self.follow.key, *self.follow.triggers} - set(fields)
            if unknown:
                raise TypeError(f"{self.model.__name__}: follow names {sorted(unknown)}, not its fields")

    @property
    def columns(self) -> tuple[Column, ...]:
        return columns_of(self.model)


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("properties", Property, "properties", sweep=True),
        Resource(
            "reservations",
            Reservation,
            "reservations",
            sweep=True,
            # What an access code is made of: the stay's dates, whether it is live, the listing.
            follow=Follow(
                "property_external_id",
                (
                    "status",
                    "check_in",
                    "check_out",
                    "check_in_date",
                    "check_out_date",
                    "property_external_id",
                ),
            ),
        ),
        # Days outside the synced window are neither fetched nor deleted: no sweep.
        Resource("calendar", CalendarDay, "calendar_days"),
        Resource(
            "photos",
            Photo,
            "photos",
            sweep=True,
            cascade=Cascade("properties", "property_external_id", ("photos_fingerprint",)),
        ),
    )
}


def children(parent: str) -> list[Resource]:
    """The resources whose cascade names ``parent``."""
    return [r for r in RESOURCES.values() if r.cascade is not None and r.cascade.parent == parent]


def _check_cascades() -> None:
    for r in RESOURCES.values():
        if r.cascade is None:
            continue
        parent = RESOURCES.get(r.cascade.parent)
        if parent is None or parent.cascade is not None:
            raise ValueError(f"{r.name}: its parent must be a resource without a parent of its own")
        unknown = set(r.cascade.triggers) - set(parent.model.model_fields)
        if unknown:
            raise ValueError(f"{r.name}: triggers {sorted(unknown)} are not fields of {parent.name}")


_check_cascades()
