"""The status board's verdicts: healthy, degraded or down, and why.

A pure function of the sync's row (``store.sync_status``), the breakers and ``now``:

    down      the partner refused the credentials (auth failed)
              a breaker guarding it is open (partner-wide or the integration's)
              DOWN_AFTER_FAILURES or more runs in a row failed
              no success for DOWN_STALE_INTERVALS intervals (plus STALE_GRACE_S)
    degraded  a breaker is half-open (probing the partner)
              the last run(s) failed, fewer than DOWN_AFTER_FAILURES in a row
              no success for STALE_INTERVALS intervals (plus STALE_GRACE_S)
              open dead letters (records the partner sent that we could not store)
    idle      disabled, or not synced yet and no failure so far
    healthy   none of the above

Every finding is kept, worst first, so a sync that is down for one reason still shows the
others ("3 failures in a row: …; 4 open dead letters").

A partner's panel gets a verdict too, from its calls over the window and its breakers:
down while its partner-wide breaker is open; degraded while an integration's breaker is
not closed, after a 429, or below PARTNER_SUCCESS_RATE with at least PARTNER_MIN_CALLS.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncd.http.breaker import State as BreakerState
from syncd.http.guards import PARTNER_SCOPE, BreakerView
from syncd.observability.callstats import CallSummary
from syncd.web import reltime

DOWN_AFTER_FAILURES = 3
STALE_INTERVALS = 2.0
DOWN_STALE_INTERVALS = 6.0
# Room for a run's own duration and the scheduler's jitter before "late" becomes "stale".
STALE_GRACE_S = 60.0
# Fewer calls than this say little about a partner's success rate (one 401 of three).
PARTNER_MIN_CALLS = 10
PARTNER_SUCCESS_RATE = 0.9
# A reason stays one line on a phone; the whole error is in the row (and the JSON).
REASON_ERROR_CHARS = 160


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    IDLE = "idle"
    DEGRADED = "degraded"
    DOWN = "down"


# Worst first, for sorting and for choosing the verdict among findings.
SEVERITY = {Health.DOWN: 3, Health.DEGRADED: 2, Health.IDLE: 1, Health.HEALTHY: 0}


@dataclass(frozen=True)
class Verdict:
    state: Health
    reason: str


def verdict(
    row: Mapping[str, Any], interval_s: float, breakers: Sequence[BreakerView], now: datetime
) -> Verdict:
    """``row``: one ``store.sync_status`` row (timestamps as datetimes); ``breakers``: any
    (those of other partners and integrations are ignored)."""
    if not row.get("enabled", True) or not row.get("resource_enabled", True):
        return Verdict(Health.IDLE, "disabled")
    findings: list[tuple[Health, str]] = []
    status = row.get("status") or "active"
    if status == "auth_failed":
        findings.append((Health.DOWN, _with_detail("auth failed", row.get("status_reason"))))
    elif status != "active":
        findings.append((Health.DOWN, _with_detail(f"integration {status}", row.get("status_reason"))))
    findings.extend(_breakers(row, breakers))
    failures = int(row.get("consecutive_failures") or 0)
    if failures:
        state = Health.DOWN if failures >= DOWN_AFTER_FAILURES else Health.DEGRADED
        what = "1 failure in a row" if failures == 1 else f"{failures} failures in a row"
        error = row.get("last_error")
        if error and any(_one_line(error) in reason for _, reason in findings):
            error = None  # already said (the auth failure's reason is the run's error)
        findings.append((state, _with_detail(what, error)))
    last_success = row.get("last_success_at")
    if last_success is not None:
        age = (now - last_success).total_seconds()
        if age > interval_s * STALE_INTERVALS + STALE_GRACE_S:
            late = age > interval_s * DOWN_STALE_INTERVALS + STALE_GRACE_S
            findings.append(
                (
                    Health.DOWN if late else Health.DEGRADED,
                    f"stale: last success {reltime.ago(last_success, now)}, "
                    f"interval {reltime.duration(interval_s)}",
                )
            )
    letters = int(row.get("dead_letters") or 0)
    if letters:
        findings.append((Health.DEGRADED, f"{letters} open dead letter{'s' if letters != 1 else ''}"))
    if findings:
        findings.sort(key=lambda f: -SEVERITY[f[0]])  # stable: same severity keeps its order
        return Verdict(findings[0][0], "; ".join(reason for _, reason in findings))
    if last_success is None:
        return Verdict(Health.IDLE, "first sync running" if running(row) else "not synced yet")
    return Verdict(Health.HEALTHY, f"last success {reltime.ago(last_success, now)}")


def partner_verdict(calls: CallSummary, breakers: Sequence[BreakerView]) -> Verdict:
    """``breakers``: the partner's (partner-wide and its integrations')."""
    findings: list[tuple[Health, str]] = []
    for b in breakers:
        if b.state is BreakerState.CLOSED:
            continue
        whose = "partner-wide breaker" if b.scope == PARTNER_SCOPE else f"breaker of {b.scope}"
        if b.state is BreakerState.OPEN:
            state = Health.DOWN if b.scope == PARTNER_SCOPE else Health.DEGRADED
            findings.append((state, f"{whose} open: next try in {reltime.duration(b.retry_in_s)}"))
        else:
            findings.append((Health.DEGRADED, f"{whose} half-open: probing"))
    if calls.rate_limited:
        n = calls.rate_limited
        findings.append((Health.DEGRADED, f"{n} call{'s' if n != 1 else ''} rate-limited (429)"))
    rate = calls.success_rate
    if rate is not None and calls.calls >= PARTNER_MIN_CALLS and rate < PARTNER_SUCCESS_RATE:
        findings.append((Health.DEGRADED, f"{rate:.0%} of calls succeeded"))
    if findings:
        findings.sort(key=lambda f: -SEVERITY[f[0]])
        return Verdict(findings[0][0], "; ".join(reason for _, reason in findings))
    if not calls.calls:
        return Verdict(Health.IDLE, "no calls")
    return Verdict(Health.HEALTHY, "answering")


def running(row: Mapping[str, Any]) -> bool:
    """A run started after the last one finished (by some process of the shard)."""
    started, finished = row.get("last_started_at"), row.get("last_finished_at")
    return started is not None and (finished is None or started > finished)


def _breakers(row: Mapping[str, Any], breakers: Sequence[BreakerView]) -> list[tuple[Health, str]]:
    found: list[tuple[Health, str]] = []
    for b in breakers:
        if b.partner != row.get("partner") or b.scope not in (PARTNER_SCOPE, row.get("integration_id")):
            continue
        whose = "partner-wide breaker" if b.scope == PARTNER_SCOPE else "breaker"
        if b.state is BreakerState.OPEN:
            found.append((Health.DOWN, f"{whose} open: next try in {reltime.duration(b.retry_in_s)}"))
        elif b.state is BreakerState.HALF_OPEN:
            found.append((Health.DEGRADED, f"{whose} half-open: probing the partner"))
    return found


def _with_detail(what: str, detail: Any) -> str:
    return f"{what}: {_one_line(detail)}" if detail else what


def _one_line(detail: Any) -> str:
    text = " ".join(str(detail).split())  # one line, whatever the partner sent
    if len(text) > REASON_ERROR_CHARS:
        text = text[: REASON_ERROR_CHARS - 1] + "…"
    return text
