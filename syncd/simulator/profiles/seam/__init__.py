"""The simulated Seam API: lock devices and access codes that settle asynchronously
(``data``), served by the gateway through the profile (``api``)."""

from __future__ import annotations

from syncd.simulator.profiles.seam.api import SeamProfile as PROFILE

__all__ = ["PROFILE"]
