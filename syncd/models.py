"""Canonical records: what every partner's adapter produces and the store persists.

Partner payloads differ in ID types, date semantics and spellings; adapters map them to
these models so that nothing downstream knows which partner a row came from.
"""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Validation runs once per record on the ingest hot path: constraints are declared with
# pydantic's built-in (Rust-side) types and Field bounds, never Python validators.
ExternalId = Annotated[str, Field(min_length=1, max_length=200)]


class ReservationStatus(enum.StrEnum):
    INQUIRY = "inquiry"
    PENDING = "pending"
    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    CANCELED = "canceled"
    DECLINED = "declined"
    EXPIRED = "expired"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    OWNER_STAY = "owner_stay"
    OTHER = "other"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    external_id: ExternalId
    source_updated_at: AwareDatetime


class Property(_Record):
    title: str = Field(min_length=1, max_length=500)
    nickname: str | None = None
    property_type: str | None = None
    accommodates: int | None = Field(default=None, ge=0, le=10_000)
    bedrooms: float | None = Field(default=None, ge=0, le=10_000)
    bathrooms: float | None = Field(default=None, ge=0, le=10_000)
    timezone: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    active: bool = True
    listed: bool = True
    base_price: Decimal | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class Reservation(_Record):
    property_external_id: ExternalId
    status: ReservationStatus
    partner_status: str
    confirmation_code: str | None = None
    channel: str | None = None
    check_in: AwareDatetime | None = None
    check_out: AwareDatetime | None = None
    check_in_date: date | None = None
    check_out_date: date | None = None
    nights: int | None = Field(default=None, ge=0, le=10_000)
    guests: int | None = Field(default=None, ge=0, le=10_000)
    guest_name: str | None = None
    guest_email: str | None = None
    total_paid: Decimal | None = None
    balance_due: Decimal | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    source_created_at: AwareDatetime | None = None
