"""A canonical model's fields become its columns; each resource's statements are rendered
from them once (their run on PostgreSQL: tests/integration/store/test_resource_schema.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import BaseModel

from syncd.models import ExternalId, Property, Reservation, Timestamp, values_of
from syncd.store.resource_sql import render
from syncd.store.resources import RESOURCES, Column, Resource, columns_of
from syncd.store.types import TABLES, row_for

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_field_types_choose_column_types_and_a_field_may_name_its_own() -> None:
    columns = {c.name: c for c in columns_of(Property)}
    assert columns["external_id"] == Column("external_id", "text", False, "text", "C")
    assert columns["title"] == Column("title", "text", False, "text")
    assert columns["nickname"] == Column("nickname", "text", True, "text")
    assert columns["bedrooms"] == Column("bedrooms", "real", True, "real")  # models.SqlType
    assert columns["latitude"].sql_type == "double precision"
    assert columns["active"] == Column("active", "boolean", False, "boolean")
    assert columns["source_updated_at"].sql_type == "timestamptz"
    # Money crosses COPY as text and is cast where it is written.
    assert (columns["base_price"].staged_type, columns["base_price"].written) == (
        "text",
        "base_price::numeric(14, 2)",
    )
    reservation = {c.name: c for c in columns_of(Reservation)}
    assert (reservation["status"].sql_type, reservation["status"].nullable) == ("text", False)  # an enum
    assert reservation["check_in_date"].sql_type == "date"
    assert reservation["property_external_id"].collation == "C"


def test_a_field_without_a_column_type_is_refused_at_declaration() -> None:
    class Tagged(BaseModel):
        external_id: ExternalId
        source_updated_at: Timestamp
        tags: list[str]

    with pytest.raises(TypeError, match="tags: no column type"):
        columns_of(Tagged)


def test_a_resource_needs_the_keys_of_every_canonical_record_and_plain_names() -> None:
    class Keyless(BaseModel):
        name: str

    with pytest.raises(TypeError, match="no external_id"):
        Resource("keyless", Keyless, "keyless")
    with pytest.raises(ValueError, match="lower-case identifiers"):
        Resource("properties", Property, "properties; DROP TABLE x")


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_every_statement_is_rendered_whole(name: str) -> None:
    sql = render(RESOURCES[name])
    statements = [sql.create_staging, sql.upsert, sql.upsert_before_18, sql.insert_new, sql.any_row]
    statements += [sql.soft_delete, sql.unseen]
    merges = [sql.record_alias, sql.rename, sql.merge_into, sql.follow_aliases]
    assert all("{{" not in s and "}}" not in s for s in [*statements, *merges, sql.count_live])
    assert f"FROM {RESOURCES[name].table} " in sql.count_live
    # One CASE per compared field: every field but the key and the timestamp that decides.
    # Per compared field (every field but the key and the timestamp that decides): a CASE
    # naming it in last_changed_fields, and one giving its old and new values, from the SET
    # clause before PostgreSQL 18, from RETURNING OLD and NEW since (one per side there).
    compared = len(RESOURCES[name].columns) - 2
    assert sql.upsert_before_18.count("IS DISTINCT FROM EXCLUDED.") == 2 * compared
    assert sql.upsert_before_18.count("json_build_array(t.") == compared + 1  # and deleted_at
    assert sql.upsert.count("IS DISTINCT FROM EXCLUDED.") == compared
    assert sql.upsert.count("IS DISTINCT FROM new.") == 2 * compared
    assert all("{{" not in s and "}}" not in s for s in (sql.fields_ddl, sql.history))
    assert sql.upsert.count("THEN old.") == compared and "json_build_array" not in sql.upsert
    assert f"'{name}'" in sql.upsert and f"'{name}'" in sql.upsert_before_18  # the events' resource


def test_a_staged_row_ends_with_the_record_s_bytes_and_their_media_type() -> None:
    model = Property(external_id="a", title="Loft", base_price=Decimal("10.50"), source_updated_at=T0)
    spec = TABLES["properties"]
    row = row_for(spec, values_of(model), b"<listing/>", "application/xml")
    assert dict(zip(spec.columns, row, strict=True)) == {
        **dict(zip(Property.model_fields, values_of(model), strict=True)),
        "base_price": "10.50",
        "raw": b"<listing/>",
        "raw_type": "application/xml",
    }
    assert row_for(spec, values_of(model), b"{}")[-1] == "application/json"


def test_push_tasks_run_in_the_webhook_band() -> None:
    from syncd.store.resources import PUSH_PRIORITY
    from syncd.store.tasks import Priority

    assert PUSH_PRIORITY == Priority.WEBHOOK
