"""The long-running commands keep the cyclic collector off a sync's rows, not off cycles
(see syncd/gc_tuning.py). Each probe runs in a fresh interpreter: the tuning is global."""

from __future__ import annotations

import json
import subprocess
import sys

# A sync's allocation pattern: batches of staging rows (tuples of a listing's 21 values,
# too long for CPython's tuple free lists) alive until they are copied (three batches of
# the default 2,500 in flight), 400 batches = 1M records; then cyclic garbage (objects
# that refer to themselves), which only the collector frees.
PROBE = """
import gc, json, sys, weakref
if sys.argv[1] == "tuned":
    from syncd.gc_tuning import tune_gc
    tuned = tune_gc()
else:
    tuned = {}
passes = [0, 0, 0]
gc.callbacks.append(lambda phase, info: phase == "stop" and passes.__setitem__(
    info["generation"], passes[info["generation"]] + 1))
in_flight = []
values = ("Title", None, "APARTMENT", 4, 2.0, 1.0, "Europe/Paris", "1 Rue", "Paris", None, "75001",
          "FR", 48.8, 2.3, True, True, None, "EUR")
for b in range(400):
    in_flight.append([(f"id{b}-{i}", i, *values, b"raw") for i in range(2_500)])
    if len(in_flight) > 3:
        in_flight.pop(0)
in_flight.clear()
rows_passes = list(passes)

class Node:
    pass
first = Node()
first.me = first
probe = weakref.ref(first)
del first
for _ in range(60_000):
    n = Node()
    n.me = n
del n
print(json.dumps({"tuned": tuned, "rows_passes": rows_passes, "cycle_freed": probe() is None}))
"""


def run_probe(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, timeout=120
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_a_sync_s_rows_no_longer_wake_the_collector_but_cycles_are_still_collected() -> None:
    default, tuned = run_probe("default"), run_probe("tuned")
    # Python's default threshold: a young pass every ~700 rows kept alive.
    assert default["rows_passes"][0] > 1_000  # type: ignore[index]
    assert tuned["rows_passes"][0] <= 5  # type: ignore[index]
    assert tuned["tuned"]["young_threshold"] == 50_000  # type: ignore[index]
    assert tuned["tuned"]["frozen_objects"] > 1_000  # type: ignore[index]
    # 60,000 cyclic objects later the collector has run and freed the first of them.
    assert tuned["cycle_freed"] is True
    assert default["cycle_freed"] is True
