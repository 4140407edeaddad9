"""syncd: keep PostgreSQL in sync with hostile partner APIs."""

from __future__ import annotations

__version__ = "0.1.0"
