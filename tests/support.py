"""Helpers shared by acceptance tests: config documents for any partner (and Guesty's from
its simulator), a real daemon process, rows and ground-truth comparison."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
import asyncpg
import orjson
import pytest

from syncd.config import Settings, parse_settings
from syncd.connectors import registry
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import SimulatorServer


def daemon_config(
    database_url: str,
    partners: dict[str, dict[str, Any]],
    integrations: list[dict[str, Any]],
    *,
    state_dir: Path,
    web: bool = False,
    batch_size: int = 1000,
) -> dict[str, Any]:
    """A config document (as TOML would parse) for any partners: their settings by name
    (``base_url``, ``token_url``, limits) and the integrations (see ``integration``)."""
    return {
        "daemon": {"state_dir": str(state_dir), "log_level": "warning", "shutdown_grace_s": 10},
        "database": {"url": database_url, "batch_size": batch_size},
        "web": {"enabled": web, "port": 0},
        "partners": partners,
        "integrations": integrations,
    }


def integration(
    integration_id: str,
    partner: str,
    credentials: dict[str, str],
    resources: Iterable[str],
    *,
    sweep_every_s: float | None = 0.0,
    overlap_s: float = 5.0,
    interval_s: float = 0.001,  # always due: each run-once daemon syncs everything again
) -> dict[str, Any]:
    """One integration syncing ``resources``; ``sweep_every_s`` None turns deletion sweeps off."""
    settings: dict[str, Any] = {"interval_s": interval_s, "overlap_s": overlap_s}
    if sweep_every_s is None:
        settings["deletion_sweep"] = False
    else:
        settings["deletion_sweep_interval_s"] = sweep_every_s
    return {
        "id": integration_id,
        "partner": partner,
        "credentials": credentials,
        "resources": {resource: dict(settings) for resource in resources},
    }


def simulated_partner(server: SimulatorServer, partner: str, **settings: Any) -> dict[str, Any]:
    """``partner``'s settings pointing at its simulator profile, which serves the real API's
    paths under the partner's prefix (``https://host/v1`` -> ``{server}/{partner}/v1``);
    limits off (the account's and the partner app's) unless ``settings`` sets them."""
    info = registry.partners()[partner]
    document: dict[str, Any] = {"base_url": server.url(partner, urlsplit(info.base_url).path.rstrip("/"))}
    if info.token_url is not None:
        document["token_url"] = server.url(partner, urlsplit(info.token_url).path)
    return {**document, "rate_limits": [], "app_rate_limits": [], **settings}


def guesty_config(
    server: SimulatorServer,
    database_url: str,
    accounts: Iterable[tuple[str, str, str]],
    *,
    state_dir: Path,
    rate_limits: list[str] | None = None,
    web: bool = False,
    sweep_every_s: float | None = 0.0,
    overlap_s: float = 5.0,
    batch_size: int = 1000,
    interval_s: float = 0.001,
) -> dict[str, Any]:
    """A config document syncing Guesty ``accounts`` from the simulator (``sweep_every_s``
    applies to properties; reservations keep the default sweep).

    ``rate_limits`` defaults to none: throughput tests switch limits off on both sides.
    """
    integrations = []
    for integration_id, client_id, secret in accounts:
        document = integration(
            integration_id,
            "guesty",
            {"client_id": client_id, "client_secret": secret},
            ("properties", "reservations"),
            sweep_every_s=sweep_every_s,
            overlap_s=overlap_s,
            interval_s=interval_s,
        )
        document["resources"]["reservations"] = {"interval_s": interval_s, "overlap_s": overlap_s}
        integrations.append(document)
    partner = {
        "base_url": server.url("guesty", "/v1"),
        "token_url": server.url("guesty", "/oauth2/token"),
        "rate_limits": rate_limits or [],
    }
    return daemon_config(
        database_url, {"guesty": partner}, integrations, state_dir=state_dir, web=web, batch_size=batch_size
    )


def settings_of(document: dict[str, Any]) -> Settings:
    return parse_settings(document, {}, registry.schemas())


def write_config(document: dict[str, Any], directory: Path) -> Path:
    """``document`` as ``directory/syncd.toml``, for a real ``syncd`` process."""
    config = directory / "syncd.toml"
    config.write_text(toml_of(document))
    return config


async def open_daemon(
    config: Path, *, stderr: Any = subprocess.DEVNULL, env: Any = None
) -> anyio.abc.Process:
    """A real ``syncd run`` process on ``config`` (the caller signals and waits for it)."""
    command = [sys.executable, "-m", "syncd", "run", "--config", str(config)]
    return await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)


def toml_of(document: dict[str, Any]) -> str:
    """Minimal TOML writer for the documents above (strings, numbers, bools, lists, tables)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return orjson.dumps(v).decode()
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    for table, body in document.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{table}]]")
                lines.extend(f"{k} = {value(v)}" for k, v in item.items())
        elif isinstance(body, dict) and all(isinstance(v, dict) for v in body.values()) and body:
            for sub, inner in body.items():
                lines.append(f"[{table}.{sub}]")
                lines.extend(f"{k} = {value(v)}" for k, v in inner.items())
        else:
            lines.append(f"[{table}]")
            lines.extend(f"{k} = {value(v)}" for k, v in body.items())
    return "\n".join(lines) + "\n"


def schema_versions() -> list[int]:
    """The schema generations schema.sql declares (its INSERT INTO schema_migrations)."""
    import re

    from syncd.store.queries import schema_sql

    found = re.search(r"INSERT INTO schema_migrations \(version\) VALUES ([^;]+?) ON CONFLICT", schema_sql())
    assert found is not None, "schema.sql declares no schema_migrations versions"
    return sorted(int(v) for v in re.findall(r"\((\d+)\)", found.group(1)))


async def db_rows(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def versions(
    database_url: str, integration_id: str, tables: Iterable[str] = ("properties", "reservations")
) -> dict[tuple[str, str], int]:
    """(table, external id) -> the stored version, for every row of ``integration_id``."""
    found: dict[tuple[str, str], int] = {}
    for table in tables:
        rows = await db_rows(
            database_url,
            f"SELECT external_id, version FROM {table} WHERE integration_id = $1",
            integration_id,
        )
        found |= {(table, r[0]): r[1] for r in rows}
    return found


async def assert_table_matches(
    database_url: str, integration_id: str, table: str, truth: Iterable[tuple[str, Any]]
) -> None:
    """``table`` holds exactly the partner's live records ((id, JSON payload) pairs), each
    byte-for-byte in ``raw``."""
    expected = dict(truth)
    rows = await db_rows(
        database_url,
        f"SELECT external_id, raw, deleted_at FROM {table} WHERE integration_id = $1",
        integration_id,
    )
    live = {r["external_id"]: orjson.loads(r["raw"]) for r in rows if r["deleted_at"] is None}
    missing = expected.keys() - live.keys()
    extra = live.keys() - expected.keys()
    assert not missing, f"{table}: {len(missing)} records missing, e.g. {sorted(missing)[:3]}"
    assert not extra, (
        f"{table}: {len(extra)} records that the partner does not have, e.g. {sorted(extra)[:3]}"
    )
    stale = [k for k, payload in expected.items() if live[k] != payload]
    assert not stale, f"{table}: {len(stale)} stale records, e.g. {stale[:3]}"


async def assert_matches_truth(database_url: str, integration_id: str, account: GuestyAccount) -> None:
    """The database holds exactly the Guesty simulator account's live records."""
    for table, truth in (
        ("properties", account.truth_listings()),
        ("reservations", account.truth_reservations()),
    ):
        await assert_table_matches(database_url, integration_id, table, ((t.id, t.payload) for t in truth))


async def poll_until(predicate: Callable[[], Awaitable[bool]], interval_s: float = 0.05) -> None:
    """Wait for a condition observed from outside the daemon (callers bound it with fail_after)."""
    while not await predicate():  # noqa: ASYNC110 - polling another process's effects is the point
        await anyio.sleep(interval_s)


def require_tool(name: str) -> str:
    """The path of an external program a test drives (promtool, chromium). Missing, the
    test is skipped on a developer's machine and fails in CI (``SYNCD_REQUIRE_TOOLS=1``,
    set by ``.ci/run``, which installs them)."""
    path = shutil.which(name)
    if path is not None:
        return path
    if os.environ.get("SYNCD_REQUIRE_TOOLS"):
        pytest.fail(f"{name} is not installed (.ci/run installs it with apt)")
    pytest.skip(f"{name} is not installed (apt install as in .ci/run)")
