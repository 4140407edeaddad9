"""The signals the alerting rules read that the daemon computes itself: the scheduler
tick's gauges (its backlog is the task queue's depth, tests/integration/engine), and token
requests counted by outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from syncd import errors
from syncd.connectors.registry import counted
from syncd.observability.metrics import Metrics

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


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
