"""How runs end, and what one ``syncd run --once`` came to (a value, no I/O).

``SyncRunner.run`` returns an ``Outcome``; the daemon keeps the last one per
integration x resource, and ``syncd run --once`` turns that ``RunSummary`` into its exit
code (``cli.run_once_exit_code``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

# (integration, resource), as ``scheduling.Key``; not imported so the CLI loads this cheaply.
Key = tuple[str, str]
# ok: finished and committed. failed: any error, a breaker refusing the run included (it is
# recorded as a failed run and retried later). interrupted: stopped at a page boundary by a
# drain, to resume from its checkpoint. busy: another process holds the run's lock.
Outcome = Literal["ok", "failed", "interrupted", "busy"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("ok", "failed", "interrupted", "busy")
# Not done by this invocation and not done by anyone else either: worth a non-zero exit.
UNFINISHED: Final[frozenset[Outcome]] = frozenset({"failed", "interrupted"})


@dataclass(frozen=True)
class RunSummary:
    """The outcome of each integration x resource a process ran (its last run of it)."""

    outcomes: Mapping[Key, Outcome] = field(default_factory=dict)

    def counts(self) -> dict[Outcome, int]:
        """Runs by outcome, every outcome present (zeros too), for a stable log event."""
        counts = dict.fromkeys(OUTCOMES, 0)
        for outcome in self.outcomes.values():
            counts[outcome] += 1
        return counts

    def unfinished(self) -> list[str]:
        """``integration/resource`` of the runs that failed or were interrupted, sorted."""
        return sorted(f"{i}/{r}" for (i, r), outcome in self.outcomes.items() if outcome in UNFINISHED)
