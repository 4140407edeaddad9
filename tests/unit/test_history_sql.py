"""History and merges as rendered SQL and printed lines (no database): the upsert's
{field: [old, new]} json, the merge statements per resource, `syncd history`'s text."""

from __future__ import annotations

import re
from typing import Any

import pytest

from syncd import admin, cli
from syncd.store.resource_sql import change_values, render
from syncd.store.resources import RESOURCES


def test_each_compared_field_gives_its_old_and_new_value_only_when_it_changed() -> None:
    indent = "\n                "
    assert change_values(["title", "accommodates"], "t", "EXCLUDED") == (
        f"('{{' || nullif(concat_ws(', ',{indent}"
        "CASE WHEN t.deleted_at IS NOT NULL"
        """ THEN '"deleted_at": ' || json_build_array(t.deleted_at, NULL) END,"""
        f"{indent}CASE WHEN t.title IS DISTINCT FROM EXCLUDED.title"
        """ THEN '"title": ' || json_build_array(t.title, EXCLUDED.title) END,"""
        f"{indent}CASE WHEN t.accommodates IS DISTINCT FROM EXCLUDED.accommodates"
        """ THEN '"accommodates": ' || json_build_array(t.accommodates, EXCLUDED.accommodates) END"""
        "), '') || '}')::json"
    )


def test_a_wide_model_stays_within_the_100_arguments_of_a_postgresql_function() -> None:
    names = [f"f{n}" for n in range(200)]
    sql = change_values(names, "old", "new")
    calls = sql.split("nullif(concat_ws(', ',\n")[1:]
    assert len(calls) == 3  # deleted_at and 200 fields: 90 + 90 + 21 pieces
    assert all(call.count("CASE WHEN") <= 90 for call in calls)
    assert sql.startswith("('{' || nullif(concat_ws(', ', nullif(concat_ws(', ',\n")  # one more, of 3
    assert re.findall(r"'\"(f\d+)\": '", sql) == names  # the model's order


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_the_values_are_built_only_for_rows_that_really_changed(name: str) -> None:
    resource = RESOURCES[name]
    sql = render(resource)
    fields = f"{resource.table}_fields"
    # PostgreSQL 18: typed composites from OLD and NEW, guarded by the fields the SET clause
    # found changed; nothing stored in the row, no JSON built.
    returned = sql.upsert[sql.upsert.index("RETURNING t.") : sql.upsert.index("), logged AS")]
    guard = "CASE WHEN cardinality(new.last_changed_fields) > 0 THEN ROW("
    assert f"{guard}old.deleted_at," in returned and f"{guard}NULL," in returned
    for side in ("old", "new"):
        assert f")::{fields} END AS {side}_values" in returned
    assert "NULL::json AS changes" in returned and "json_build_array" not in returned
    assert "last_changes = NULL," in sql.upsert
    # Before 18: the SET clause writes them as JSON into last_changes, RETURNING carries them.
    assert "last_changes = ('{' || nullif(concat_ws(" in sql.upsert_before_18
    assert "t.last_changes AS changes" in sql.upsert_before_18
    assert f"NULL::{fields} AS old_values" in sql.upsert_before_18
    for upsert in (sql.upsert, sql.upsert_before_18):
        assert "'restored'" in upsert and "CASE WHEN created THEN NULL ELSE changes END" in upsert
        assert f"changes, old_{resource.table}, new_{resource.table})" in upsert
    # The composite's fields are the ones it is filled with, in that order.
    assert sql.fields[0] == "deleted_at"
    assert re.findall(r"THEN old\.(\w+) END", returned) == list(sql.fields[1:])


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
        "title": ["Beach", "Ocean"],
        "nickname": ["B1", None],
        "accommodates": [2, 4],
    }
    assert admin.change_text(["title", "nickname", "accommodates"], changes) == (
        'title: "Beach" -> "Ocean"; nickname: "B1" -> null; accommodates: 2 -> 4'
    )
    # Fields the event does not name follow, sorted.
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
