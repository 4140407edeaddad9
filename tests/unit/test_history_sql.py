"""History and merges as rendered SQL and printed lines (no database): the upsert's
{field: [old, new]} jsonb, the merge statements per resource, `syncd history`'s text."""

from __future__ import annotations

import re
from typing import Any

import pytest

from syncd import admin, cli
from syncd.store.resource_sql import change_values, render
from syncd.store.resources import RESOURCES


def test_each_compared_field_gives_its_old_and_new_value_only_when_it_changed() -> None:
    sql = change_values(["title", "accommodates"])
    assert sql == (
        "jsonb_build_object(\n"
        "                    'title', CASE WHEN t.title IS DISTINCT FROM EXCLUDED.title"
        " THEN jsonb_build_array(t.title, EXCLUDED.title) END,\n"
        "                    'accommodates', CASE WHEN t.accommodates IS DISTINCT FROM EXCLUDED.accommodates"
        " THEN jsonb_build_array(t.accommodates, EXCLUDED.accommodates) END)"
    )


def test_a_wide_model_stays_within_the_100_arguments_of_a_postgresql_function() -> None:
    names = [f"f{n}" for n in range(95)]
    sql = change_values(names)
    objects = sql.split("\n                || ")
    assert len(objects) == 3  # 40 + 40 + 15 fields
    assert all(obj.count("CASE WHEN") <= 40 for obj in objects)  # two arguments per field
    assert re.findall(r"'(f\d+)', CASE", sql) == names
    assert change_values([]) == "'{}'::jsonb"


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_the_values_are_built_only_for_rows_that_really_changed(name: str) -> None:
    upsert = render(RESOURCES[name]).upsert
    assignment = upsert[upsert.index("last_changes = CASE") : upsert.index("version = t.version")]
    # Guarded by the same comparison that bumps version: an unchanged row pays nothing.
    assert "IS DISTINCT FROM" in assignment.split("THEN jsonb_strip_nulls", 1)[0]
    assert assignment.rstrip().endswith("END,")
    assert "'restored'" in upsert and "last_changes" in upsert.split("logged AS", 1)[1]


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_merge_statements_name_their_resource_and_table(name: str) -> None:
    resource = RESOURCES[name]
    sql = render(resource)
    for statement in (sql.record_alias, sql.rename, sql.merge_into, sql.follow_aliases):
        assert f"'{name}'" in statement
    for statement in (sql.rename, sql.merge_into):
        assert f"UPDATE {resource.table} " in statement and "'merged'" in statement
    assert f"DELETE FROM incoming_{resource.table} s USING entity_aliases" in sql.follow_aliases
    # Every staged column but the id is carried to the new id.
    moved = sql.follow_aliases.split("SELECT DISTINCT ON (new_id) new_id, ", 1)[1]
    assert all(c.name in moved for c in resource.columns if c.name != "external_id")


def test_changes_print_in_the_model_s_order_with_values_as_json() -> None:
    changes: dict[str, list[Any]] = {
        "accommodates": [2, 4],
        "title": ["Beach", "Ocean"],
        "nickname": ["B1", None],
    }
    assert admin.change_text(["title", "nickname", "accommodates"], changes) == (
        'title: "Beach" -> "Ocean"; nickname: "B1" -> null; accommodates: 2 -> 4'
    )
    # Fields the event does not name (a merge's external_id) follow, sorted.
    assert admin.change_text(["deleted_at"], {"external_id": ["a", "b"], "deleted_at": [None, "t"]}) == (
        'deleted_at: null -> "t"; external_id: "a" -> "b"'
    )
    assert admin.change_text(None, None) == ""


def test_history_takes_integration_resource_and_id_in_that_order() -> None:
    args = cli.build_parser().parse_args(["history", "acme", "properties", "L1", "--config", "c.toml"])
    assert (args.integration, args.resource, args.external_id, args.json) == (
        "acme",
        "properties",
        "L1",
        False,
    )
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["history", "acme", "--config", "c.toml"])
    assert exited.value.code == cli.EXIT_CONFIG  # argparse's usage error: 2, as bad configuration
