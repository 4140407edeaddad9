"""Each canonical resource's statements, rendered once from its model's columns.

The statements' shapes are reviewable as SQL in resource_queries.sql; only their column
lists and names come from here. Rendering runs at import, never per batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources as package_files

from syncd.store.queries import parse
from syncd.store.resources import CHILD_PRIORITY, Column, Resource, children

TEMPLATES = parse(package_files.files("syncd.store").joinpath("resource_queries.sql").read_text("utf-8"))
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_LIST = ",\n        "  # keeps a rendered statement readable in pg_stat_statements and logs
# Not compared for a change: the conflict key, and the timestamp that decides the write.
_NOT_COMPARED = frozenset({"external_id", "source_updated_at"})


@dataclass(frozen=True)
class ResourceSQL:
    """One resource's statements (see resource_queries.sql for each one's contract)."""

    staging_table: str
    create_staging: str
    upsert: str
    insert_new: str
    any_row: str
    soft_delete: str
    unseen: str
    count_live: str
    # A child resource's sweep of the children its parents no longer have; None otherwise.
    sweep_children: str | None = None


def staging_table(resource: Resource) -> str:
    return f"incoming_{resource.table}"


def _definition(column: Column, sql_type: str) -> str:
    collate = f' COLLATE "{column.collation}"' if column.collation else ""
    return f"{column.name} {sql_type}{collate}{'' if column.nullable else ' NOT NULL'}"


def _values(resource: Resource, table: str) -> dict[str, str]:
    columns = resource.columns
    compared = [c.name for c in columns if c.name not in _NOT_COMPARED]
    return {
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
    return "\n".join(fragments)


def _render(template: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]  # a KeyError here is a typo in a template

    return _PLACEHOLDER.sub(fill, TEMPLATES[template])


def render(resource: Resource) -> ResourceSQL:
    values = _values(resource, resource.table)
    sweep_children = None
    if resource.cascade is not None:
        sweep_children = _render("sweep_children", {**values, "parent_key": resource.cascade.key})
    return ResourceSQL(
        staging_table=values["staging"],
        **{name: _render(name, {**values, "cascade": _cascade(resource, name)}) for name in (
            "create_staging", "upsert", "insert_new", "any_row", "soft_delete", "unseen", "count_live"
        )},
        sweep_children=sweep_children,
    )  # fmt: skip


def expected_table(resource: Resource, name: str) -> str:
    """CREATE TABLE ``name`` as the resource's model implies it (the schema test's yardstick)."""
    return _render("expected_table", _values(resource, name))
