"""The Booking.com Connectivity API fake: the OTA reservation queues and the token exchange
(``api``), each account's queues and reservations (``data``)."""

from __future__ import annotations

from syncd.simulator.profiles.booking_com.api import BookingProfile as PROFILE

__all__ = ["PROFILE"]
