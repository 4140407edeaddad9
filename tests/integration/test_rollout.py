"""A partner-level rollout moves a stable share of integrations to a new API version: 100
integrations at 30 % put 30 (± 5) on it, the same ones in every build and in another
process, pins override it, and widening it to 50 % keeps the first ones moved. The daemon's
own ``build_connectors`` builds them; ``syncd_integration_api_version`` reports each.

Partner-neutral: it runs for every partner whose connector declares more than one version.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.app import build_connectors
from syncd.config import Settings
from syncd.connectors import registry
from syncd.crypto import Cipher, generate_key
from syncd.http.guards import Guards
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from tests.support import daemon_config, integration, settings_of, write_config

pytestmark = pytest.mark.anyio

MULTI = sorted(name for name, info in registry.partners().items() if len(info.versions) > 1)
IDS = [f"acct-{n:03d}" for n in range(1, 101)]
PINNED_DEFAULT, PINNED_NEW = IDS[0], IDS[1]


def document(partner: str, percent: float, tmp_path: Path, database_url: str) -> dict[str, Any]:
    """100 integrations of ``partner``; the first two pinned (one per version), the rest
    left to a rollout of the partner's newest version at ``percent``."""
    info = registry.partners()[partner]
    credentials = dict.fromkeys(info.credential_keys, "x")
    integrations = [integration(i, partner, credentials, ()) for i in IDS]
    integrations[0]["api_version"] = info.default_version
    integrations[1]["api_version"] = info.versions[-1]
    rollout = {"version": info.versions[-1], "percent": percent}
    partners = {partner: {"base_url": "http://127.0.0.1:9/v1", "rollout": rollout}}
    return daemon_config(database_url, partners, integrations, state_dir=tmp_path)


async def built_versions(
    settings: Settings, database_url: str
) -> tuple[dict[str, str], list[MutableMapping[str, Any]]]:
    """Each integration's version as the daemon's build reports it (the gauge set to 1),
    and the start-up log lines naming it."""
    metrics = Metrics()
    log = get_logger()
    async with Store.open(database_url) as store, Transports() as transports:
        credentials = CredentialStore(store, Cipher([generate_key()]))
        with capture_logs() as logs:
            built = build_connectors(
                settings, IDS, transports, credentials, metrics, log, Guards(metrics, log)
            )
    assert set(built) == set(IDS)
    found: dict[str, str] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "syncd_integration_api_version" and sample.value == 1:
                assert sample.labels["integration"] not in found, "one version per integration"
                found[sample.labels["integration"]] = sample.labels["version"]
    return found, [entry for entry in logs if entry["event"] == "integration_api_version"]


def on(version: str, versions: dict[str, str]) -> set[str]:
    return {i for i, v in versions.items() if v == version and i not in (PINNED_DEFAULT, PINNED_NEW)}


@pytest.mark.parametrize("partner", MULTI)
async def test_a_30_percent_rollout_moves_a_stable_30_of_100_and_widening_keeps_them(
    partner: str, database_url: str, tmp_path: Path
) -> None:
    info = registry.partners()[partner]
    new, default = info.versions[-1], info.default_version

    at_30 = document(partner, 30, tmp_path, database_url)
    first, logged = await built_versions(settings_of(at_30), database_url)
    assert set(first) == set(IDS)
    moved = on(new, first)
    assert 25 <= len(moved) <= 35, len(moved)
    assert on(default, first) == set(IDS) - moved - {PINNED_DEFAULT, PINNED_NEW}
    # Pins win over the rollout, either way.
    assert (first[PINNED_DEFAULT], first[PINNED_NEW]) == (default, new)
    # One start-up line per integration names its version.
    assert {(e["integration"], e["version"]) for e in logged} == set(first.items())

    second, _ = await built_versions(settings_of(at_30), database_url)
    assert second == first

    # Another process reaches the same answer (the operator's preview of a rollout).
    config = write_config(at_30, tmp_path)
    proc = await anyio.run_process(
        [sys.executable, "-m", "syncd", "check-config", str(config), "--versions"], check=True
    )
    rows = [line.split("\t") for line in proc.stdout.decode().splitlines()[1:]]
    assert {r[0]: r[2] for r in rows} == first
    assert {r[0]: r[3] for r in rows if r[0] in (PINNED_DEFAULT, PINNED_NEW)} == {
        PINNED_DEFAULT: "pinned",
        PINNED_NEW: "pinned",
    }

    widened, _ = await built_versions(
        settings_of(document(partner, 50, tmp_path, database_url)), database_url
    )
    assert on(new, widened) >= moved
    assert 45 <= len(on(new, widened)) <= 55, len(on(new, widened))
    assert (widened[PINNED_DEFAULT], widened[PINNED_NEW]) == (default, new)
