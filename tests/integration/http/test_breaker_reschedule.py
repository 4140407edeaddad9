"""A sync that fails fast on an open breaker comes back after the cool-down, not in a spin,
and a partner error raised mid-stream (inside the pipeline's task group) fails the run
like any other instead of escaping as an exception group."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import pytest
import structlog

from syncd import errors
from syncd.config import ResourceSettings, Settings
from syncd.connectors.base import Page
from syncd.connectors.guesty.fakes import FakeGuesty, listing
from syncd.engine.runner import SyncRunner
from syncd.observability.metrics import Metrics
from syncd.store.postgres import Store

pytestmark = pytest.mark.anyio


@dataclass
class FailingConnector(FakeGuesty):
    """Serves ``pages_before`` pages, then raises ``error``."""

    error: Exception = field(default_factory=lambda: errors.CircuitOpen(retry_in=42.0))
    pages_before: int = 0

    async def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        served = 0
        async for page in super().stream(resource, checkpoint, settings):
            if served == self.pages_before:
                break
            served += 1
            yield page
        raise self.error


def settings() -> Settings:
    return Settings.model_validate(
        {
            # 0 s: the setting under which a failure backoff alone would retry at once.
            "daemon": {"retry_failed_after_s": 0},
            "integrations": [
                {"id": "acme", "partner": "guesty", "resources": {"properties": {"deletion_sweep": False}}}
            ],
        }
    )


async def run_once(
    database_url: str, connector: FakeGuesty, before: Callable[[SyncRunner], None] | None = None
) -> tuple[str, timedelta]:
    async with Store.open(database_url) as store:
        await store.register_integration("acme", "guesty", True, {"properties": (900.0, True)})
        runner = SyncRunner(
            store, {"acme": connector}, settings(), Metrics(), structlog.get_logger(), anyio.Event()
        )
        if before is not None:
            before(runner)
        outcome = await runner.run("acme", "properties")
        (schedule,) = await store.list_schedules(["acme"])
        return outcome, schedule.next_due_at - await store.now()


@pytest.mark.parametrize("pages_before", [0, 2])
async def test_an_open_breaker_reschedules_after_its_cool_down(database_url: str, pages_before: int) -> None:
    records = [listing(i) for i in range(300)]
    connector = FailingConnector(records, pages_before=pages_before)
    outcome, due_in = await run_once(database_url, connector)
    assert outcome == "failed"
    assert timedelta(seconds=41) <= due_in <= timedelta(seconds=42 * 1.2 + 1)


async def test_a_run_refused_just_before_the_breaker_closed_goes_again_at_once(database_url: str) -> None:
    """The breaker refuses this run (its sibling holds the half-open probe), the sibling's
    probe then closes it, and only then is this run's failure handled: it must be due at
    once, not a probe timeout later (seen on a slow box: 17 s, as the close came while the
    failure was being written)."""
    refused = errors.CircuitOpen("circuit guesty/acme is half_open", retry_in=42.0)
    connector = FailingConnector([listing(i) for i in range(10)], error=refused)
    outcome, due_in = await run_once(database_url, connector, before=lambda runner: runner.circuit_closed())
    assert outcome == "failed"
    assert due_in < timedelta(seconds=5)


async def test_a_partner_error_mid_stream_fails_the_run_cleanly(database_url: str) -> None:
    connector = FailingConnector(
        [listing(i) for i in range(300)], error=errors.PartnerUnavailable("503"), pages_before=1
    )
    outcome, due_in = await run_once(database_url, connector)
    assert outcome == "failed"
    assert due_in < timedelta(seconds=5)  # the ordinary failure backoff (0 s here)
