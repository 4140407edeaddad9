"""Named SQL queries, loaded once from ``queries.sql`` (every statement reviewable as SQL)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import LiteralString, cast

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, LiteralString]:
    """Split ``-- name: x`` blocks into a dict; duplicate names are a programming error."""
    parts = _NAME.split(text)
    out: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in out:
            raise ValueError(f"duplicate query name {name!r}")
        out[name] = cast("LiteralString", body.strip())
    return out


def schema_sql() -> str:
    """schema.sql ships inside the wheel (force-include); a source checkout has it at the top."""
    packaged = resources.files("syncd").joinpath("schema.sql")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "schema.sql").read_text(encoding="utf-8")


def load(name: str) -> dict[str, LiteralString]:
    """The named queries of one ``.sql`` file of this package."""
    return parse(resources.files("syncd.store").joinpath(name).read_text(encoding="utf-8"))


QUERIES = load("queries.sql")
