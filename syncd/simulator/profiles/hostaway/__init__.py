"""The simulated Hostaway API: a deterministic dataset (``data``) rendered in the documented
JSON shapes (``records``), served by the gateway through the profile (``api``)."""

from __future__ import annotations

from syncd.simulator.profiles.hostaway.api import HostawayProfile as PROFILE

__all__ = ["PROFILE"]
