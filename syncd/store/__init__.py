"""PostgreSQL: the only package that imports asyncpg. Schema, named queries, batch upserts."""

from __future__ import annotations
