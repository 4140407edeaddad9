"""Each canonical resource's statements, rendered once from its model's columns.

The statements' shapes are reviewable as SQL in resource_queries.sql; only their column
lists and names come from here. Rendering runs at import, never per batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources as package_files

from syncd.store.queries import parse
from syncd.store.resources import CHILD_PRIORITY, PUSH_PRIORITY, Column, Resource, children

TEMPLATES = parse(package_files.files("syncd.store").joinpath("resource_queries.sql").read_text("utf-8"))
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_LIST = ",\n        "  # keeps a rendered statement readable in pg_stat_statements and logs
# Not compared for a change: the conflict key, and the timestamp that decides the write.
_NOT_COMPARED = frozenset({"external_id", "source_updated_at"})
# Arguments of one concat_ws in a row's changes: a function takes at most 100.
_PIECES_PER_CALL = 90


@dataclass(frozen=True)
class ResourceSQL:
    """One resource's statements (see resource_queries.sql for each one's contract)."""

    staging_table: str
    create_staging: str
    upsert: str  # PostgreSQL 18 and later (RETURNING OLD)
    upsert_before_18: str
    insert_new: str
    any_row: str
    soft_delete: str
    unseen: str
    count_live: str
    record_alias: str
    rename: str
    merge_into: str
    follow_aliases: str
    # The composite of a change's values and its events columns (resource_queries.sql:
    # fields_type), the field order it must have, and an entity's history.
    fields_type: str = ""
    fields_ddl: str = ""
    fields: tuple[str, ...] = ()
    history: str = ""
    # A child resource's sweep of the children its parents no longer have; None otherwise.
    sweep_children: str | None = None
    # A followed resource's push tasks for a follower's keys (store.followers); None otherwise.
    follow_backfill: str | None = None


def staging_table(resource: Resource) -> str:
    return f"incoming_{resource.table}"


def _definition(column: Column, sql_type: str) -> str:
    collate = f' COLLATE "{column.collation}"' if column.collation else ""
    return f"{column.name} {sql_type}{collate}{'' if column.nullable else ' NOT NULL'}"


def change_values(compared: list[str], old: str, new: str) -> str:
    """A row's changed fields as json text, {field: [old, new]} in the model's order, from
    the stored row (``old``) and the written one (``new``); NULL when none changed.

    Built as text, only for the fields that changed (one comparison each for the others):
    ``concat_ws`` skips the NULL pieces. Field names are plain identifiers (resources.py),
    so they need no JSON escaping; ``json_build_array`` escapes the values."""
    pieces = [
        f"CASE WHEN {old}.deleted_at IS NOT NULL "
        f"""THEN '"deleted_at": ' || json_build_array({old}.deleted_at, NULL) END""",
        *(
            f"CASE WHEN {old}.{name} IS DISTINCT FROM {new}.{name} "
            f"""THEN '"{name}": ' || json_build_array({old}.{name}, {new}.{name}) END"""
            for name in compared
        ),
    ]
    indent = "\n                "
    calls = [
        f"nullif(concat_ws(', ',{indent}" + f",{indent}".join(pieces[n : n + _PIECES_PER_CALL]) + "), '')"
        for n in range(0, len(pieces), _PIECES_PER_CALL)
    ]
    joined = calls[0] if len(calls) == 1 else f"nullif(concat_ws(', ', {', '.join(calls)}), '')"
    return f"('{{' || {joined} || '}}')::json"


def fields_type(resource: Resource) -> str:
    return f"{resource.table}_fields"


def changed_values(compared: list[str], fields: str, side: str) -> str:
    """One side (``old`` or ``new``) of a row's change as the ``fields`` composite: each
    compared field's value where it changed, NULL elsewhere; deleted_at's old value (set
    only when the row comes back)."""
    deleted_at = "old.deleted_at" if side == "old" else "NULL"
    values = [f"CASE WHEN old.{name} IS DISTINCT FROM new.{name} THEN {side}.{name} END" for name in compared]
    indent = "\n                "
    return f"ROW({deleted_at},{indent}" + f",{indent}".join(values) + f")::{fields}"


def _values(resource: Resource, table: str) -> dict[str, str]:
    columns = resource.columns
    compared = [c.name for c in columns if c.name not in _NOT_COMPARED]
    # A composite's attribute: the column's type and collation, never NOT NULL.
    definitions = {c.name: c.sql_type + (f' COLLATE "{c.collation}"' if c.collation else "") for c in columns}
    return {
        "fields": fields_type(resource),
        "field_definitions": ", ".join(f"('{name}', '{definitions[name]}')" for name in compared),
        "returned_old": f"NULL::{fields_type(resource)}",
        "returned_new": f"NULL::{fields_type(resource)}",
        "table": table,
        "staging": staging_table(resource),
        "resource": resource.name,
        "columns": ", ".join(c.name for c in columns),
        "staged": ", ".join(c.written for c in columns),
        "assignments": _LIST.join(
            f"{c.name} = EXCLUDED.{c.name}" for c in columns if c.name != "external_id"
        ),
        "changes": (_LIST + "    ").join(
            f"CASE WHEN t.{name} IS DISTINCT FROM EXCLUDED.{name} THEN '{name}' END" for name in compared
        ),
        "old": ", ".join(f"t.{name}" for name in compared),
        "new": ", ".join(f"EXCLUDED.{name}" for name in compared),
        "set_changes": change_values(compared, "t", "EXCLUDED"),
        "returned_changes": "t.last_changes",
        "moved_columns": ", ".join(c.name for c in columns if c.name != "external_id"),
        "staging_columns": ", ".join(f"{c.name} {c.staged_type}" for c in columns),
        "table_columns": ",\n    ".join(_definition(c, c.sql_type) for c in columns),
    }


def _cascade(resource: Resource, statement: str) -> str:
    """The ``cascade`` CTEs of ``resource``'s ``statement`` (empty when it has no children or
    the statement writes no parent rows): every row ``insert_new`` or ``soft_delete`` writes
    calls for a child task; in ``upsert``, a row inserted or with a trigger changed."""
    fragments: list[str] = []
    if statement not in ("upsert", "insert_new", "soft_delete"):
        return ""
    for child in children(resource.name):
        assert child.cascade is not None
        triggers = ", ".join(f"'{t}'" for t in child.cascade.triggers)
        if statement == "upsert":
            # A resurrected parent's children were deleted with it.
            trigger = f"w.created OR w.last_changed_fields && ARRAY['deleted_at', {triggers}]::text[]"
        else:  # every row insert_new writes is new, every row soft_delete writes is gone
            trigger = "true"
        source = "gone" if statement == "soft_delete" else "written"
        values = {"child": child.name, "trigger": trigger, "priority": str(CHILD_PRIORITY), "source": source}
        fragments.append(_render("cascade", values))
    if resource.follow is not None:
        follow = resource.follow
        if statement == "upsert":
            triggers = ", ".join(f"'{t}'" for t in follow.triggers)
            trigger = f"w.created OR w.last_changed_fields && ARRAY['deleted_at', {triggers}]::text[]"
            moved = f"'{follow.key}' = ANY (w.last_changed_fields)"
        else:
            trigger, moved = "true", "false"
        values = {
            "resource": resource.name,
            "key": follow.key,
            "trigger": trigger,
            "moved": moved,
            "priority": str(PUSH_PRIORITY),
            "source": "gone" if statement == "soft_delete" else "written",
        }
        fragments.append(_render("follow", values))
    return "\n".join(fragments)


def _render(template: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]  # a KeyError here is a typo in a template

    return _PLACEHOLDER.sub(fill, TEMPLATES[template])


def render(resource: Resource) -> ResourceSQL:
    values = _values(resource, resource.table)
    values["follow_key"] = f", {resource.follow.key}" if resource.follow is not None else ""
    compared = [c.name for c in resource.columns if c.name not in _NOT_COMPARED]
    changed = "CASE WHEN cardinality(new.last_changed_fields) > 0 THEN {} END"
    returning_old = {
        **values,
        "set_changes": "NULL",
        "returned_changes": "NULL::json",
        # Only rows that really changed: the others' comparisons are not made twice.
        "returned_old": changed.format(changed_values(compared, values["fields"], "old")),
        "returned_new": changed.format(changed_values(compared, values["fields"], "new")),
    }
    sweep_children = None
    if resource.cascade is not None:
        sweep_children = _render("sweep_children", {**values, "parent_key": resource.cascade.key})
    upsert_cascade = _cascade(resource, "upsert")
    follow_backfill = None
    if resource.follow is not None:
        follow_backfill = _render(
            "follow_backfill", {**values, "key": resource.follow.key, "priority": str(PUSH_PRIORITY)}
        )
    return ResourceSQL(
        staging_table=values["staging"],
        upsert=_render("upsert", {**returning_old, "cascade": upsert_cascade}),
        upsert_before_18=_render("upsert", {**values, "cascade": upsert_cascade}),
        **{name: _render(name, {**values, "cascade": _cascade(resource, name)}) for name in (
            "create_staging", "insert_new", "any_row", "soft_delete", "unseen", "count_live",
            "record_alias", "rename", "merge_into", "follow_aliases",
        )},
        fields_type=values["fields"],
        fields_ddl=_render("fields_type", values),
        fields=("deleted_at", *compared),
        history=_render("history", values),
        sweep_children=sweep_children,
        follow_backfill=follow_backfill,
    )  # fmt: skip


def expected_table(resource: Resource, name: str) -> str:
    """CREATE TABLE ``name`` as the resource's model implies it (the schema test's yardstick)."""
    return _render("expected_table", _values(resource, name))
