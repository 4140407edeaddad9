"""Guesty as ``syncd.testing.FakeConnector`` plays it: its adapter, its ``_id``s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.connectors.guesty import PARTNER, adapter
from syncd.testing import FakeConnector, FakePartner


def _id_of(record: Mapping[str, Any]) -> str | None:
    value = record.get("_id")
    return value if isinstance(value, str) else None


GUESTY = FakePartner(
    info=PARTNER,
    normalizers={"properties": adapter.listing_values, "reservations": adapter.reservation_values},
    id_of=_id_of,
)


@dataclass
class FakeGuesty(FakeConnector):
    """Serves Guesty listings (raw dicts, see ``listing``) from memory."""

    partner: FakePartner = field(default=GUESTY, kw_only=True)


def listing(
    i: int, title: str = "Home", updated: str = "2025-01-01T00:00:00.000Z", **extra: Any
) -> dict[str, Any]:
    """A minimal valid Guesty listing."""
    return {"_id": f"{i:024x}", "title": title, "lastUpdatedAt": updated, **extra}
