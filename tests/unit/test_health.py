"""The status board's verdicts (healthy / degraded / down / idle with a reason) and its
relative times, as pure functions of a sync row, the breakers and ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncd.http.breaker import State
from syncd.http.guards import PARTNER_SCOPE, BreakerView
from syncd.observability.callstats import CallSummary
from syncd.web import reltime
from syncd.web.health import (
    DOWN_AFTER_FAILURES,
    DOWN_STALE_INTERVALS,
    REASON_ERROR_CHARS,
    STALE_GRACE_S,
    STALE_INTERVALS,
    Health,
    Verdict,
    partner_verdict,
    running,
    verdict,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
INTERVAL_S = 900.0


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "integration_id": "acme",
        "partner": "p",
        "enabled": True,
        "status": "active",
        "status_reason": None,
        "resource": "properties",
        "resource_enabled": True,
        "last_started_at": NOW - timedelta(minutes=3, seconds=30),
        "last_finished_at": NOW - timedelta(minutes=3),
        "last_outcome": "ok",
        "consecutive_failures": 0,
        "last_success_at": NOW - timedelta(minutes=3),
        "last_error": None,
        "dead_letters": 0,
    }
    return base | changes


def judge(breakers: list[BreakerView] | None = None, **changes: Any) -> Verdict:
    return verdict(row(**changes), INTERVAL_S, breakers or [], NOW)


def test_healthy_says_when_it_last_succeeded() -> None:
    assert judge() == Verdict(Health.HEALTHY, "last success 3 min ago")


def test_a_failed_auth_is_down_with_the_partners_reason() -> None:
    found = judge(
        status="auth_failed",
        status_reason="401 authentication failed: invalid_client",
        consecutive_failures=1,
        last_error="401 authentication failed: invalid_client",
        last_success_at=None,
    )
    # The run's error is the auth failure's: said once.
    assert found == Verdict(
        Health.DOWN, "auth failed: 401 authentication failed: invalid_client; 1 failure in a row"
    )


def test_failures_in_a_row_degrade_then_take_it_down() -> None:
    assert judge(consecutive_failures=1, last_error="PartnerUnavailable: 503") == Verdict(
        Health.DEGRADED, "1 failure in a row: PartnerUnavailable: 503"
    )
    assert judge(consecutive_failures=DOWN_AFTER_FAILURES - 1).state is Health.DEGRADED
    found = judge(consecutive_failures=DOWN_AFTER_FAILURES, last_error="read timeout\non /listings")
    assert found == Verdict(
        Health.DOWN, f"{DOWN_AFTER_FAILURES} failures in a row: read timeout on /listings"
    )


def test_a_long_error_is_cut_to_one_line() -> None:
    found = judge(consecutive_failures=1, last_error="x" * 1000)
    assert len(found.reason) == len("1 failure in a row: ") + REASON_ERROR_CHARS
    assert found.reason.endswith("…")


def test_staleness_is_counted_in_intervals() -> None:
    degraded_at = INTERVAL_S * STALE_INTERVALS + STALE_GRACE_S
    assert judge(last_success_at=NOW - timedelta(seconds=degraded_at)).state is Health.HEALTHY
    found = judge(last_success_at=NOW - timedelta(seconds=degraded_at + 1))
    assert found == Verdict(Health.DEGRADED, "stale: last success 31 min ago, interval 15 min")
    down_at = INTERVAL_S * DOWN_STALE_INTERVALS + STALE_GRACE_S
    assert judge(last_success_at=NOW - timedelta(seconds=down_at)).state is Health.DEGRADED
    assert judge(last_success_at=NOW - timedelta(hours=2)) == Verdict(
        Health.DOWN, "stale: last success 2 h ago, interval 15 min"
    )


def test_open_dead_letters_degrade() -> None:
    assert judge(dead_letters=1) == Verdict(Health.DEGRADED, "1 open dead letter")
    assert judge(dead_letters=4) == Verdict(Health.DEGRADED, "4 open dead letters")


def test_breakers_of_this_integration_and_its_partner_count_others_do_not() -> None:
    own_open = BreakerView("p", "acme", State.OPEN, 21.0)
    assert judge([own_open]) == Verdict(Health.DOWN, "breaker open: next try in 21 s")
    partner_open = BreakerView("p", PARTNER_SCOPE, State.OPEN, 90.0)
    assert judge([partner_open]) == Verdict(Health.DOWN, "partner-wide breaker open: next try in 1 min")
    half = BreakerView("p", "acme", State.HALF_OPEN, 0.0)
    assert judge([half]) == Verdict(Health.DEGRADED, "breaker half-open: probing the partner")
    others = [
        BreakerView("p", "beach", State.OPEN, 21.0),
        BreakerView("q", PARTNER_SCOPE, State.OPEN, 21.0),
        BreakerView("p", "acme", State.CLOSED, 0.0),
    ]
    assert judge(others).state is Health.HEALTHY


def test_every_finding_is_kept_worst_first() -> None:
    found = judge(
        [BreakerView("p", "acme", State.HALF_OPEN, 0.0)],
        dead_letters=2,
        consecutive_failures=DOWN_AFTER_FAILURES,
        last_error="HTTP 502",
    )
    assert found == Verdict(
        Health.DOWN,
        "3 failures in a row: HTTP 502; breaker half-open: probing the partner; 2 open dead letters",
    )


def test_not_synced_yet_and_disabled_are_idle() -> None:
    assert judge(last_success_at=None, last_outcome=None, last_finished_at=None) == Verdict(
        Health.IDLE, "first sync running"
    )
    assert judge(last_success_at=None, last_started_at=None, last_finished_at=None) == Verdict(
        Health.IDLE, "not synced yet"
    )
    assert judge(resource_enabled=False, consecutive_failures=9) == Verdict(Health.IDLE, "disabled")
    assert judge(enabled=False).state is Health.IDLE


def test_running_means_started_after_the_last_finish() -> None:
    assert not running(row())
    assert running(row(last_started_at=NOW))
    assert running(row(last_finished_at=None))
    assert not running(row(last_started_at=None, last_finished_at=None))


def test_the_partner_panel_verdict() -> None:
    quiet = CallSummary(300.0)
    assert partner_verdict(quiet, []) == Verdict(Health.IDLE, "no calls")
    fine = CallSummary(300.0, calls=100, ok=99, server_errors=1)
    assert partner_verdict(fine, [BreakerView("p", PARTNER_SCOPE, State.CLOSED, 0.0)]) == Verdict(
        Health.HEALTHY, "answering"
    )
    failing = CallSummary(300.0, calls=100, ok=80, rate_limited=2)
    assert partner_verdict(failing, []) == Verdict(
        Health.DEGRADED, "2 calls rate-limited (429); 80% of calls succeeded"
    )
    few = CallSummary(300.0, calls=3, ok=1)  # one 401 of three says little
    assert partner_verdict(few, []).state is Health.HEALTHY
    breakers = [
        BreakerView("p", PARTNER_SCOPE, State.OPEN, 25.0),
        BreakerView("p", "acme", State.OPEN, 3.0),
        BreakerView("p", "beach", State.HALF_OPEN, 0.0),
    ]
    assert partner_verdict(fine, breakers) == Verdict(
        Health.DOWN,
        "partner-wide breaker open: next try in 25 s; breaker of acme open: next try in 3 s; "
        "breaker of beach half-open: probing",
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "under 1 s"),
        (45.9, "45 s"),
        (60, "1 min"),
        (899, "14 min"),
        (3600, "1 h"),
        (4800, "1 h 20 min"),
        (11 * 3600 + 120, "11 h"),
        (86400 * 2 + 3600 * 5, "2 d 5 h"),
        (86400 * 12 + 3600, "12 d"),
        (-5, "under 1 s"),
    ],
)
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    assert reltime.duration(seconds) == text


def test_relative_times_past_and_future() -> None:
    assert reltime.ago(NOW - timedelta(minutes=3, seconds=59), NOW) == "3 min ago"
    assert reltime.ago(NOW - timedelta(seconds=2), NOW) == "just now"
    assert reltime.ago(NOW + timedelta(minutes=2), NOW) == "in 2 min"  # a clock ahead of ours
    assert reltime.until(NOW + timedelta(minutes=12), NOW) == "in 12 min"
    assert reltime.until(NOW - timedelta(hours=1), NOW) == "due now"
