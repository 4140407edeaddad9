"""The Airbnb walk ([assumed] ``updated_since`` + ``_offset`` sorted by update time) over
real HTTP against the simulator, with the partner's data changing between pages: edits,
inserts and deletions mid-walk skip nothing, and every page's checkpoint resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from syncd import crypto
from syncd.config import ResourceSettings
from syncd.connectors import registry
from syncd.connectors.base import Connector
from syncd.http.transport import Transports
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.credentials import CredentialStore
from syncd.store.postgres import Store
from tests.support import daemon_config, integration, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

PARTNER = "airbnb"
KINDS = {"properties": "listings", "reservations": "reservations"}


async def _walk(
    connector: Connector, resource: str, checkpoint: dict[str, Any] | None, between: Any = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """id -> the newest payload read, and each page's checkpoint."""
    read: dict[str, Any] = {}
    checkpoints = []
    settings = ResourceSettings(overlap_s=0)
    async for n, page in _numbered(connector.stream(resource, checkpoint, settings)):
        for raw in page.records:
            read[str(connector.external_id(resource, raw))] = orjson.loads(bytes(raw))
        checkpoints.append(page.checkpoint)
        if between is not None:
            between(n)
    return read, checkpoints


async def _numbered(pages: Any) -> Any:
    n = 0
    async for page in pages:
        yield n, page
        n += 1


@pytest.mark.parametrize("resource", ["properties", "reservations"])
async def test_changes_during_a_walk_skip_nothing_and_checkpoints_resume(
    resource: str, database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    data = sim.add_account(PARTNER, account_id, secret, profile.dataset(9, 120, DatasetOptions()))
    async with SimulatorServer(sim) as server, Store.open(database_url) as store, Transports() as transports:
        document = daemon_config(
            database_url,
            {PARTNER: simulated_partner(server, PARTNER, page_size=10)},
            [integration("walk", PARTNER, profile.config_credentials(account_id, secret), [resource])],
            state_dir=tmp_path,
        )
        settings = settings_of(document)
        await store.register_integration("walk", PARTNER, True, {resource: (3600.0, True)})
        connector = registry.build_connector(
            settings.integrations[0],
            settings.partner(PARTNER),
            transport=transports.get(PARTNER, registry.egress(settings.partner(PARTNER), {})),
            tokens=CredentialStore(store, crypto.Cipher([crypto.generate_key()])),
            metrics=Metrics(),
            log=get_logger(),
        )

        def mutate(n: int) -> None:
            if n < 12:  # never after the last page: a walk cannot see the future
                profile.mutate(data, 6, seed=n)

        read, checkpoints = await _walk(connector, resource, None, mutate)
        truth = {
            str(r["id"]): r["payload"] for line in profile.truth(data, resource) for r in [orjson.loads(line)]
        }
        missing = truth.keys() - read.keys()
        stale = [k for k in truth.keys() & read.keys() if read[k] != truth[k]]
        assert not missing and not stale, (sorted(missing)[:5], stale[:5])
        assert len(checkpoints) > 12

        # Resuming from any page's checkpoint reads on to the same end state.
        for checkpoint in checkpoints[3 :: max(1, len(checkpoints) // 4)]:
            resumed, _ = await _walk(connector, resource, checkpoint)
            assert resumed, checkpoint
            final = {**read, **resumed}
            assert all(final[k] == truth[k] for k in truth)
