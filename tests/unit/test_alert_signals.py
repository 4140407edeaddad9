"""The signals the alerting rules read that the daemon computes itself: the scheduler's
backlog (pure), its tick's gauges, and token requests counted by outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncd import errors
from syncd.connectors.registry import counted
from syncd.engine import scheduling
from syncd.observability.metrics import Metrics
from syncd.store.types import Schedule

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def schedule(integration_id: str, resource: str, due_in_s: float) -> Schedule:
    return Schedule(integration_id, resource, 900.0, NOW + timedelta(seconds=due_in_s), 0)


def test_backlog_counts_what_is_due_and_not_running_and_the_oldest_lateness() -> None:
    schedules = [
        schedule("acme", "properties", -30),
        schedule("acme", "reservations", -600),  # running: not waiting
        schedule("globex", "properties", -90),
        schedule("globex", "reservations", 5),  # not due yet
        schedule("initech", "properties", 0),  # due exactly now
    ]
    ready = scheduling.due(schedules, {("acme", "reservations")}, NOW)
    assert scheduling.backlog(ready, NOW) == scheduling.Backlog(waiting=3, oldest_late_s=90.0)
    # Whatever order the caller passes them in.
    assert scheduling.backlog(list(reversed(ready)), NOW).oldest_late_s == 90.0


def test_backlog_is_empty_when_nothing_waits() -> None:
    schedules = [schedule("acme", "properties", 60), schedule("globex", "properties", -5)]
    assert scheduling.backlog(scheduling.due(schedules, {("globex", "properties")}, NOW), NOW) == (
        scheduling.Backlog(0, 0.0)
    )


def test_a_scheduler_tick_sets_its_gauges() -> None:
    metrics = Metrics()
    metrics.scheduler_ticked(NOW.timestamp(), 3, 90.0)
    value = metrics.registry.get_sample_value
    assert value("syncd_scheduler_last_tick_timestamp_seconds") == NOW.timestamp()
    assert value("syncd_schedules_overdue") == 3
    assert value("syncd_schedule_overdue_seconds") == 90.0
    metrics.scheduler_ticked(NOW.timestamp() + 1, 0, 0.0)
    assert value("syncd_schedules_overdue") == 0 and value("syncd_schedule_overdue_seconds") == 0


@pytest.mark.anyio
async def test_token_requests_are_counted_by_outcome() -> None:
    metrics = Metrics()
    answers: list[dict[str, Any] | errors.PartnerError] = [
        {"access_token": "t"},
        errors.AuthFailed("401 authentication failed: invalid_client", status=401),
        errors.PartnerUnavailable("503 from partner", status=503),
        errors.AuthFailed("401 authentication failed: invalid_client", status=401),
    ]

    async def fetch(form: dict[str, str]) -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, errors.PartnerError):
            raise answer
        return answer

    fetch_counted = counted(fetch, "guesty", metrics)
    assert await fetch_counted({}) == {"access_token": "t"}
    for _ in range(3):
        with pytest.raises(errors.PartnerError):
            await fetch_counted({})

    def requests(outcome: str) -> float | None:
        return metrics.registry.get_sample_value(
            "syncd_token_requests_total", {"partner": "guesty", "outcome": outcome}
        )

    assert (requests("ok"), requests("auth"), requests("transient"), requests("client")) == (1, 2, 1, None)
