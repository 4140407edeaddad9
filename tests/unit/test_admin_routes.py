"""/admin's edges without a daemon: the bearer check runs before anything else, and a
database that is away is a 503 with a reason, not a 500 with a traceback."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from syncd import errors
from syncd.config import Settings
from syncd.store.postgres import Store
from syncd.web import admin as web_admin

pytestmark = pytest.mark.anyio
TOKEN = "z" * 40


class AwayStore:
    """A store whose database is unreachable."""

    calls = 0

    async def integration_ids(self) -> list[str]:
        AwayStore.calls += 1
        raise errors.StoreUnavailable("connection refused")


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))

    info = warning


async def test_a_database_away_is_a_503_and_an_unauthorized_call_never_reaches_it() -> None:
    log = Log()
    ctx = web_admin.AdminContext(
        SecretStr(TOKEN), cast("Store", AwayStore()), Settings(), {}, log, lambda: None
    )
    app = Starlette(routes=[web_admin.mount(ctx)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin") as client:
        refused = await client.get("/admin/tasks", headers={"authorization": "Bearer " + "y" * 40})
        assert refused.status_code == 401 and AwayStore.calls == 0
        away = await client.get("/admin/tasks", headers={"authorization": f"Bearer {TOKEN}"})
    assert away.status_code == 503
    assert away.json() == {"error": "the database is unavailable; try again"}
    assert [e for e, _ in log.events] == ["admin_unauthorized", "admin_store_error"]
    assert all(TOKEN not in str(fields) and "y" * 40 not in str(fields) for _, fields in log.events)
