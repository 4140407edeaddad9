"""Faithful fakes of partner APIs, served over loopback HTTP for tests and benchmarks.

One gateway (``gateway``: faults → authentication → limits → latency → handler → wire
damage) serves every partner; what differs per partner is a profile (``profile``), one
package per partner under ``profiles/`` pairing a pure, deterministic dataset with its
routes and quirks. ``server`` assembles the profiles (each under ``/{partner}``),
accounts, limits, the request log and the ``/_sim/`` control plane, and runs uvicorn
inside the caller's event loop.

Faults are seeded and reproducible: ``fault_spec`` (declarative rules, JSON),
``fault_plan`` (the pure decision per request), ``fault_presets`` (RELIABILITY rows 6, 7,
17 and the ``--faults`` syntax) and ``fault_wire`` (resets, truncation, hangs on the wire).
"""

from __future__ import annotations

# Here, not in ``server``: ``syncd``'s CLI builds the ``simulate`` flags in every process
# (the daemon too), and importing ``server`` would load the whole simulator (its uvicorn
# app and ~6 MB of dataset pools) into a daemon that never serves it.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8900
