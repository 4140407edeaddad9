"""Faithful fakes of partner APIs, served over loopback HTTP for tests and benchmarks.

Each partner profile pairs a pure, deterministic dataset (``guesty_data``) with a thin
Starlette shell (``guesty_api``); ``server`` assembles accounts, limits, the request log
and the ``/_sim/`` control plane, and runs uvicorn inside the caller's event loop.
"""

from __future__ import annotations
