"""Contract tests against partners' real APIs: does the partner still send what our adapter
reads? They run only where an operator puts credentials in the environment, and are
skipped everywhere else (CI and the default run never leave 127.0.0.1).

For a partner ``acme`` whose credential set is ``client_id`` + ``client_secret``:

    SYNCD_CONTRACT_ACME_CLIENT_ID=... SYNCD_CONTRACT_ACME_CLIENT_SECRET=... \\
        .venv/bin/pytest tests/contract -k acme

Each resource's first page is fetched with the production connector (its documented
base URL, the environment's proxy and CA settings) and every record must normalize: a
dead letter here is a payload drift to fix before it reaches users. Only counts and
field-level errors are reported; records and credentials are never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from syncd import crypto
from syncd.config import ResourceSettings
from syncd.connectors import registry
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.pipeline import RECORD_ERRORS
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions, discover
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from syncd.store.resources import RESOURCES
from tests.support import integration, settings_of, simulated_partner

pytestmark = pytest.mark.anyio


def configured(partner: str) -> dict[str, str] | None:
    """The first of the partner's credential sets found complete in the environment.

    Read when the module is imported: the suite's fixtures clear ``SYNCD_*`` variables
    from each test's environment."""
    info = registry.partners()[partner]
    prefix = f"SYNCD_CONTRACT_{partner.upper()}_"
    for keys in info.credential_sets:
        found = {k: os.environ.get(prefix + k.upper(), "") for k in keys}
        if all(found.values()):
            return found
    return None


# Partners whose resources the adapter reads (a lock provider's contract: test_seam_contract.py).
SYNCING = sorted(name for name, info in registry.partners().items() if info.resources)
CREDENTIALS = {name: configured(name) for name in SYNCING}


async def contract_problems(
    partner: str, credentials: dict[str, str], overrides: dict[str, Any], database_url: str, tmp_path: Path
) -> list[str]:
    """What the adapter cannot read in the first page of each resource (empty: none)."""
    info = registry.partners()[partner]
    document = {
        "daemon": {"state_dir": str(tmp_path)},
        "database": {"url": database_url},
        "partners": {partner: {"max_attempts": 3, **overrides}},
        "integrations": [integration("contract", partner, credentials, sorted(info.resources))],
    }
    settings = settings_of(document)
    integ, partner_settings = settings.integrations[0], settings.partner(partner)
    async with Store.open(database_url) as store, Transports() as transports:
        await store.register_integration(
            "contract", partner, True, dict.fromkeys(info.resources, (3600.0, True))
        )
        connector = registry.build_connector(
            integ,
            partner_settings,
            transport=transports.get(partner, registry.egress(partner_settings, os.environ)),
            tokens=CredentialStore(store, crypto.Cipher([crypto.generate_key()])),
            metrics=Metrics(),
            log=get_logger(),
        )
        await connector.check_access()
        problems: list[str] = []
        for resource in sorted(info.resources):
            if RESOURCES[resource].cascade is not None:
                continue  # a child resource: read per parent (stream_children), not listed
            normalize = connector.normalizer(resource)
            pages = 0
            async for page in connector.stream(resource, None, ResourceSettings()):
                for raw in page.records:
                    try:
                        normalize(raw)
                    except RECORD_ERRORS as exc:
                        problems.append(f"{resource}: {type(exc).__name__}: {str(exc)[:200]}")
                pages += 1
                break  # the first page is the contract; the rest is the partner's data
            if not pages and not info.queue:  # an empty queue has nothing to show, rightly
                problems.append(f"{resource}: no page at all")
    return problems


@pytest.mark.parametrize("partner", sorted(CREDENTIALS))
async def test_the_partner_still_sends_what_the_adapter_reads(
    partner: str, database_url: str, tmp_path: Path
) -> None:
    credentials = CREDENTIALS[partner]
    if credentials is None:
        sets = " or ".join("+".join(sorted(keys)) for keys in registry.partners()[partner].credential_sets)
        pytest.skip(f"no SYNCD_CONTRACT_{partner.upper()}_* credentials ({sets}) in the environment")
    problems = await contract_problems(partner, credentials, {}, database_url, tmp_path)
    assert not problems, f"{len(problems)} records the adapter cannot read: {problems[:10]}"


@pytest.mark.parametrize("partner", sorted(set(discover()) & set(SYNCING)))
async def test_the_contract_check_itself_against_the_simulator(
    partner: str, database_url: str, tmp_path: Path
) -> None:
    """The check above, run where it can run here: against the partner's simulator profile,
    whose payloads follow the documentation, it must find nothing to complain about."""
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(partner)
    account_id, secret = profile.credentials(1)
    sim.add_account(partner, account_id, secret, profile.dataset(3, 50, DatasetOptions()))
    credentials = profile.config_credentials(account_id, secret)
    async with SimulatorServer(sim) as server:
        overrides = simulated_partner(server, partner)
        assert await contract_problems(partner, credentials, overrides, database_url, tmp_path) == []
