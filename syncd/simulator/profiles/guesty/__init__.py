"""The Guesty Open API fake: routes and quirks (``api``), tokens (``auth``), the dataset."""

from __future__ import annotations

from syncd.simulator.profiles.guesty.api import GuestyProfile as PROFILE

__all__ = ["PROFILE"]
