"""The Airbnb partner API fake: auth-code OAuth with rotating refresh tokens and the
client-secret rotation (``api``), listings and reservations (``data``)."""

from __future__ import annotations

from syncd.simulator.profiles.airbnb.api import AirbnbProfile as PROFILE

__all__ = ["PROFILE"]
