"""The Cloudbeds PMS API fake: routes and tokens (``api``), the dataset (``data``, ``records``)."""

from __future__ import annotations

from syncd.simulator.profiles.cloudbeds.api import CloudbedsProfile as PROFILE

__all__ = ["PROFILE"]
