"""A pool that may outgrow the server's free connections is reported at start."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.app import open_store, warn_if_connections_short
from syncd.observability.logging import get_logger
from tests.support import db_rows, settings_of

pytestmark = pytest.mark.anyio


def document(database_url: str, tmp_path: Path, workers: int) -> dict[str, Any]:
    return {
        "daemon": {"state_dir": str(tmp_path), "worker_concurrency": workers},
        "database": {"url": database_url, "write_lanes": 2},
    }


async def warnings_at_start(database_url: str, state: Path, workers: int) -> list[MutableMapping[str, Any]]:
    settings = settings_of(document(database_url, state, workers))
    with capture_logs() as logs:
        async with open_store(settings, database_url) as store:
            await warn_if_connections_short(store, settings, get_logger())
    return [e for e in logs if e["event"] == "database_connections_short"]


async def test_a_pool_wider_than_the_server_is_reported(database_url: str, tmp_path: Path) -> None:
    (limit,) = await db_rows(database_url, "SELECT current_setting('max_connections')::int")
    workers = limit[0]  # (+ 2 urgent) x 2 lanes + 4: more than the whole server
    (warning,) = await warnings_at_start(database_url, tmp_path, workers)
    assert warning["pool_max_size"] == (workers + 2) * 2 + 4
    assert warning["server_has_free"] < limit[0]
    assert "worker_concurrency" in warning["hint"] and "max_connections" in warning["hint"]


async def test_the_default_pool_fits_the_embedded_server(database_url: str, tmp_path: Path) -> None:
    assert await warnings_at_start(database_url, tmp_path, workers=8) == []
