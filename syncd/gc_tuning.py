"""Keep CPython's cyclic garbage collector off a sync's hot path.

The collector runs a young-generation pass each time 700 more container objects are
alive than at the last pass. A sync keeps every record's staging row (a tuple) alive
until its batch is copied to PostgreSQL, so at the default threshold it runs once per
~700 records: thousands of passes in a 1M-listing full sync, ~5 % of the daemon's CPU.
With the young threshold at 50,000 (above the rows a run holds at once: batch_size x
(pipeline_depth + write_lanes + 1) at the defaults is 7,500) the same sync runs a couple
of passes.

Reference counting still frees everything that is not in a cycle at once; what waits
longer is cyclic garbage (exceptions kept with their tracebacks, finished tasks), at most
~50,000 objects' worth before a pass collects it. ``gc.freeze()`` moves what start-up built
(modules, settings, pydantic schemas) out of the collector's view, so the full passes that
remain no longer walk it (Instagram's recipe; see the ``gc.freeze`` documentation).
Applied by the long-running commands (`syncd run`, `syncd simulate`), never to an
importing program such as the test suite.
"""

from __future__ import annotations

import gc

THRESHOLDS: tuple[int, int, int] = (50_000, 10, 10)  # young, middle, old (Python's: 700, 10, 10)


def tune_gc() -> dict[str, int]:
    """Collect start-up's garbage, freeze what survives, raise the young threshold.

    Returns what the daemon logs: the objects frozen and the young threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return {"frozen_objects": gc.get_freeze_count(), "young_threshold": THRESHOLDS[0]}
