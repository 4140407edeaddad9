"""The Cloudbeds PMS API fake: routes, API keys and sliding OAuth tokens (``api``), the
dataset answering the documented methods (``data``, ``records``)."""

from __future__ import annotations

from syncd.simulator.profiles.cloudbeds.api import CloudbedsProfile as PROFILE

__all__ = ["PROFILE"]
