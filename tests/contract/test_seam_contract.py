"""The lock provider's contract against its real API: does Seam still send what the driver
reads? Read-only (devices and their codes are listed and decoded; nothing is created on
a real lock), and skipped without credentials:

    SYNCD_CONTRACT_SEAM_API_KEY=seam_... .venv/bin/pytest tests/contract -k seam

The same check runs against the simulator profile, where it must find nothing amiss.
Codes' PINs are never decoded, so none is printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from syncd import crypto
from syncd.connectors import registry
from syncd.connectors.access import access_codes_of
from syncd.connectors.seam.connector import SeamConnector
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from tests.support import settings_of, simulated_partner

pytestmark = pytest.mark.anyio
API_KEY = os.environ.get("SYNCD_CONTRACT_SEAM_API_KEY", "")


async def contract_problems(
    api_key: str, overrides: dict[str, Any], database_url: str, tmp_path: Path
) -> list[str]:
    document = {
        "daemon": {"state_dir": str(tmp_path)},
        "database": {"url": database_url},
        "partners": {"seam": {"max_attempts": 3, **overrides}, "hostaway": {"base_url": "http://127.0.0.1:9/v1"}},
        "integrations": [
            {"id": "src", "partner": "hostaway", "enabled": False,
             "credentials": {"client_id": "1", "client_secret": "x"}},
            {"id": "contract", "partner": "seam", "credentials": {"api_key": api_key},
             "locks": {"follows": "src", "devices": {"none": "none"}}},
        ],
    }  # fmt: skip
    settings = settings_of(document)
    integ, partner_settings = settings.integrations[1], settings.partner("seam")
    problems: list[str] = []
    async with Store.open(database_url) as store, Transports() as transports:
        await store.register_integration("contract", "seam", True, {})
        connector = registry.build_connector(
            integ,
            partner_settings,
            transport=transports.get("seam", registry.egress(partner_settings, os.environ)),
            tokens=CredentialStore(store, crypto.Cipher([crypto.generate_key()])),
            metrics=Metrics(),
            log=get_logger(),
        )
        assert isinstance(connector, SeamConnector)
        provider = access_codes_of(connector)
        assert provider is not None
        for device_id in (await connector.device_ids())[:3]:
            try:
                async for code in provider.list(device_id):
                    if not code.id or code.device_id != device_id:
                        problems.append(f"{device_id}: a code without its id or device")
            except (msgspec.MsgspecError, ValueError) as exc:
                problems.append(f"{device_id}: {type(exc).__name__}: {str(exc)[:200]}")
    return problems


async def test_seam_still_sends_what_the_driver_reads(database_url: str, tmp_path: Path) -> None:
    if not API_KEY:
        pytest.skip("no SYNCD_CONTRACT_SEAM_API_KEY in the environment")
    assert await contract_problems(API_KEY, {}, database_url, tmp_path) == []


async def test_the_seam_contract_check_itself_against_the_simulator(
    database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile("seam")
    account_id, secret = profile.credentials(1)
    workspace = sim.add_account("seam", account_id, secret, profile.dataset(3, 4, DatasetOptions()))
    workspace.create(
        "device_1", "syncd:x:1", "2025-01-01T15:00:00.000Z", "2025-01-02T11:00:00.000Z", None, 0.0, ""
    )
    async with SimulatorServer(sim) as server:
        overrides = simulated_partner(server, "seam")
        assert await contract_problems(secret, overrides, database_url, tmp_path) == []
