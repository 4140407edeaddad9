"""The facts of /status, as JSON-safe values: what the page shows and ``curl /status`` gets.

Added to each ``syncs`` row (``store.sync_status``, timestamps as ISO strings)::

    "health": {"state": "healthy" | "degraded" | "down" | "idle", "reason": "..."},
    "running": true | false

and, per partner of this shard's integrations (``partners``), over the last ``window_s``::

    {"window_s": 300, "span_s": 300,            # span: less than the window just after start
     "calls": 57, "calls_per_min": 11.4, "peak_calls_per_min": 40,
     "budget_per_min": 200.0 | null,           # null: no rate limit configured
     "success_rate": 0.95 | null, "p95_ms": 230.0 | null,
     "rate_limited": 1, "server_errors": 2, "no_answer": 0,
     "breaker": {"state": "closed", "retry_in_s": 0.0,
                 "integrations": {"acme": {"state": "open", "retry_in_s": 12.0}}},
     "health": {"state": ..., "reason": ...}}

and the shard's task queue at the engine's last tick (``queue``)::

    {"due": 12, "oldest_s": 95.0, "running": 8,
     "claim_stalled_s": 0.0, "claim_stall_s": 600.0,   # /readyz fails past the second
     "priorities": [{"priority": "user", "due": 0, "oldest_s": 0.0}, ...]}   # every band
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from syncd.http.breaker import State as BreakerState
from syncd.http.guards import PARTNER_SCOPE, BreakerView
from syncd.observability.callstats import CallSummary
from syncd.store.tasks import Depth, Priority, priority_name
from syncd.web import health


def sync_entry(row: Mapping[str, Any], breakers: Sequence[BreakerView], now: datetime) -> dict[str, Any]:
    """One ``store.sync_status`` row with its verdict; ``interval_s`` comes with the row."""
    found = health.verdict(row, float(row.get("interval_s") or 0.0), breakers, now)
    return {
        **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()},
        "health": {"state": found.state.value, "reason": found.reason},
        "running": health.running(row),
    }


def partner_entry(
    calls: CallSummary, window_s: float, budget_per_s: float | None, breakers: Sequence[BreakerView]
) -> dict[str, Any]:
    """``breakers``: the partner's own (partner-wide and its integrations')."""
    found = health.partner_verdict(calls, breakers)
    shared = next((b for b in breakers if b.scope == PARTNER_SCOPE), None)
    return {
        "window_s": window_s,
        "span_s": round(calls.span_s, 1),
        "calls": calls.calls,
        "calls_per_min": round(calls.per_min, 1),
        "peak_calls_per_min": calls.peak_per_min,
        "budget_per_min": round(budget_per_s * 60, 1) if budget_per_s is not None else None,
        "success_rate": round(calls.success_rate, 4) if calls.success_rate is not None else None,
        "p95_ms": round(calls.p95_s * 1000, 1) if calls.p95_s is not None else None,
        "rate_limited": calls.rate_limited,
        "server_errors": calls.server_errors,
        "no_answer": calls.no_answer,
        "breaker": {
            "state": (shared.state if shared else BreakerState.CLOSED).value,
            "retry_in_s": shared.retry_in_s if shared else 0.0,
            "integrations": {
                b.scope: {"state": b.state.value, "retry_in_s": b.retry_in_s}
                for b in breakers
                if b.scope != PARTNER_SCOPE and b.state is not BreakerState.CLOSED
            },
        },
        "health": {"state": found.state.value, "reason": found.reason},
    }


ACCESS_STATES = ("setting", "set", "failed", "removing", "removed")


def queue_entry(
    depth: Sequence[Depth], running: int, stalled_s: float, stall_limit_s: float
) -> dict[str, Any]:
    """Due tasks and the oldest one's wait per priority band (every band, zeros included)."""
    due = {p.name.lower(): 0 for p in Priority}
    oldest = {p.name.lower(): 0.0 for p in Priority}
    for d in depth:
        name = priority_name(d.priority)
        due[name] += d.due
        oldest[name] = max(oldest[name], round(d.oldest_s, 1))
    return {
        "due": sum(d.due for d in depth),
        "oldest_s": round(max((d.oldest_s for d in depth), default=0.0), 1),
        "running": running,
        "claim_stalled_s": round(stalled_s, 1),
        "claim_stall_s": stall_limit_s,
        "priorities": [{"priority": name, "due": due[name], "oldest_s": oldest[name]} for name in due],
    }


def access_codes_entry(
    follows: Mapping[str, str], counts: Mapping[str, Mapping[str, int]], failures: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Per lock integration: what it follows and its codes by state; the latest refused
    codes with their reservation, device and reason (the codes themselves are never read)."""
    return {
        "integrations": {
            lock: {
                "follows": source,
                "states": {s: int(counts.get(lock, {}).get(s, 0)) for s in ACCESS_STATES},
            }
            for lock, source in sorted(follows.items())
        },
        "failures": [
            {
                "integration": str(f["integration_id"]),
                "reservation": f"{f['source_id']}:{f['reservation_id']}",
                "device": str(f["device_id"]),
                "reason": str(f.get("last_error") or "")[:200],
                "at": f["updated_at"].isoformat() if isinstance(f.get("updated_at"), datetime) else None,
            }
            for f in failures
        ],
    }
