"""Canonical records: what every partner's adapter produces and the store persists.

Partner payloads differ in ID types, date semantics and spellings; adapters map them to
these models so that nothing downstream knows which partner a row came from.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, get_args, get_origin

import annotated_types
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


@dataclass(frozen=True, slots=True)
class SqlType:
    """A field's column type where the one its Python type maps to does not fit
    (``syncd.store.resources``): ``Annotated[float | None, SqlType("real")]``.

    Metadata for the store only: pydantic and ``canonical_check`` ignore it."""

    name: str
    collation: str | None = None


# Validation runs once per record on the ingest hot path: constraints are declared with
# pydantic's built-in (Rust-side) types and Field bounds, never Python validators.
MAX_ID_LENGTH = 200  # also keeps every index entry on an id far below btree's 2.7 KB
# Ids are opaque and compared byte by byte (schema.sql: COLLATE "C").
ExternalId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), SqlType("text", collation="C")]
# Bounds of the columns behind the models (schema.sql): a value the database would refuse
# must fail here, as one record's dead letter, not as a batch that fails on every retry.
MAX_MONEY = Decimal("999999999999.99")  # numeric(14, 2)
# Aware times whose UTC value Python (and so the driver) can represent.
MIN_TIME = datetime(1, 1, 2, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 30, tzinfo=UTC)
Timestamp = Annotated[AwareDatetime, Field(ge=MIN_TIME, le=MAX_TIME)]


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


class CalendarStatus(enum.StrEnum):
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"  # blocked by the host or the partner
    RESERVED = "reserved"  # taken by a booking, confirmed or pending
    OTHER = "other"


# The ``source_updated_at`` of a record whose partner sends no modification time (a
# calendar day). Every copy of it ties, so the store's same-stamp rule writes a copy only
# when its bytes differ: an unchanged record writes nothing, a changed one its new version.
# The fetch time would make every copy newer and rewrite every record on every run.
UNTIMED = datetime(1970, 1, 1, tzinfo=UTC)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    external_id: ExternalId
    source_updated_at: Timestamp


class Property(_Record):
    title: str = Field(min_length=1, max_length=500)
    nickname: str | None = None
    property_type: str | None = None
    accommodates: int | None = Field(default=None, ge=0, le=10_000)
    bedrooms: Annotated[float | None, SqlType("real")] = Field(default=None, ge=0, le=10_000)
    bathrooms: Annotated[float | None, SqlType("real")] = Field(default=None, ge=0, le=10_000)
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
    base_price: Decimal | None = Field(default=None, ge=0, le=MAX_MONEY)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    # A digest of the property's photos as its list page shows them (None: the partner's
    # list shows none): its change is what fetches the photos again (resources.Cascade).
    photos_fingerprint: Annotated[int | None, SqlType("bigint")] = None


class Reservation(_Record):
    property_external_id: ExternalId
    status: ReservationStatus
    partner_status: str
    confirmation_code: str | None = None
    channel: str | None = None
    check_in: AwareDatetime | None = Field(default=None, ge=MIN_TIME, le=MAX_TIME)
    check_out: AwareDatetime | None = Field(default=None, ge=MIN_TIME, le=MAX_TIME)
    check_in_date: date | None = None
    check_out_date: date | None = None
    nights: int | None = Field(default=None, ge=0, le=10_000)
    guests: int | None = Field(default=None, ge=0, le=10_000)
    guest_name: str | None = None
    guest_email: str | None = None
    total_paid: Decimal | None = Field(default=None, ge=-MAX_MONEY, le=MAX_MONEY)
    balance_due: Decimal | None = Field(default=None, ge=-MAX_MONEY, le=MAX_MONEY)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    source_created_at: AwareDatetime | None = Field(default=None, ge=MIN_TIME, le=MAX_TIME)


class Photo(_Record):
    """One picture of a property (a child resource: fetched per property whose photos
    changed). ``external_id`` is "<property id>:<picture id>"; ``source_updated_at`` is the
    property's own timestamp when its pictures were read."""

    property_external_id: ExternalId
    position: int = Field(ge=0, le=10_000)
    url: str = Field(min_length=1, max_length=4096)
    thumbnail_url: str | None = Field(default=None, max_length=4096)
    caption: str | None = None


class CalendarDay(_Record):
    """One listing-day: ``external_id`` is ``<property external id>:<YYYY-MM-DD>``."""

    property_external_id: ExternalId
    day: date
    status: CalendarStatus
    partner_status: str
    price: Decimal | None = Field(default=None, ge=0, le=MAX_MONEY)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    min_nights: int | None = Field(default=None, ge=0, le=10_000)


# --- the ingest hot path -------------------------------------------------------------------
# Building a pydantic model costs several µs per 20-field record, a fifth of the daemon's
# CPU per synced record, yet an adapter's wire decoder (msgspec) has already checked every
# value's type. What pydantic would still check is the canonical bounds below, so adapters
# run these first and call pydantic only for a record that fails them, to get its
# canonical error (or value). The bounds are read from the models above, so the
# two cannot drift; tests/unit/test_canonical_check.py holds the two paths equal.

# Canonical values travel as tuples in the model's field order (``field_names``): the order
# of the staging tables' columns too, so a record's values become its row without a dict.
CanonicalCheck = Callable[[Sequence[Any]], bool]
CanonicalValues = Callable[[tuple[Any, ...]], tuple[Any, ...]]


def field_names(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(model.model_fields)


def values_of(record: BaseModel) -> tuple[Any, ...]:
    """A model's values in field order (the shape adapters produce)."""
    return tuple(getattr(record, name) for name in type(record).model_fields)


def canonical_values(model: type[BaseModel]) -> CanonicalValues:
    """values (in field order, of the types the model declares) -> the canonical values:
    the same tuple when every bound holds, else pydantic's verdict (its coerced values, or
    its ``ValidationError``, which names the failing field)."""
    check = canonical_check(model)
    names = field_names(model)

    def canonical(values: tuple[Any, ...]) -> tuple[Any, ...]:
        if check(values):
            return values
        return values_of(model.model_validate(dict(zip(names, values, strict=True))))

    return canonical


def canonical_check(model: type[BaseModel]) -> CanonicalCheck:
    """A predicate: True when ``values`` (in field order, of the types the model declares)
    meet every bound the model declares. Unknown constraint kinds are refused at import,
    never ignored.

    Generated as one function (as ``dataclasses`` generates ``__init__``): a closure per
    bound would cost as much as a third of the pydantic call it replaces."""
    lines: list[str] = [f"    if len(v) != {len(model.model_fields)}: return False"]
    constants: dict[str, Any] = {}
    for n, (name, info) in enumerate(model.model_fields.items()):
        tests = _field_tests(name, info.annotation, info.metadata, constants, n)
        optional = type(None) in get_args(info.annotation)
        condition = " and ".join(tests)
        absent = "x is not None and not" if optional else "x is None or not"
        lines.append(f"    x = v[{n}]  # {name}\n    if {absent} ({condition}): return False")
    body = "\n".join("        " + line for block in lines for line in block.splitlines())
    source = (
        f"def check(v):\n    try:\n{body}\n"
        "    except (TypeError, ArithmeticError, AttributeError):\n        return False\n    return True\n"
    )
    namespace: dict[str, Any] = dict(constants)
    exec(compile(source, f"<canonical_check {model.__name__}>", "exec"), namespace)
    check: CanonicalCheck = namespace["check"]
    return check


def _same_type(exact: type, bound: Any) -> Any:
    """``bound`` as the field's own type when that is exact: a Decimal compares with a Decimal
    in half the time it takes with an int, a float with a float a quarter faster."""
    if exact in (float, Decimal) and type(bound) is int:
        converted = exact(bound)
        if converted == bound:
            return converted
    return bound


# A constraint pydantic records in a field's metadata -> its bound's attribute, the test.
_BOUNDS: dict[type, tuple[str, str]] = {
    annotated_types.Ge: ("ge", "x >= {}"),
    annotated_types.Gt: ("gt", "x > {}"),
    annotated_types.Le: ("le", "x <= {}"),
    annotated_types.Lt: ("lt", "x < {}"),
    annotated_types.MinLen: ("min_length", "len(x) >= {}"),
    annotated_types.MaxLen: ("max_length", "len(x) <= {}"),
}


def base_type(annotation: Any) -> Any:
    """A field's type without its ``| None``: ``Decimal | None`` -> ``Decimal``."""
    args = get_args(annotation)
    return next((a for a in args if a is not type(None)), annotation) if args else annotation


def _field_tests(
    name: str, annotation: Any, metadata: list[Any], constants: dict[str, Any], n: int
) -> list[str]:
    """Python expressions over ``x`` (the field's value, not None) that must all hold."""
    args = get_args(annotation)
    if any(get_origin(a) is Annotated for a in args):  # its bounds would not be in ``metadata``
        raise TypeError(f"{name}: declare bounds with Field(...) on the field, not inside a union")
    base = base_type(annotation)
    # The exact type pydantic would produce (a near miss, like a datetime for a date or a
    # bool for an int, falls back to pydantic, which knows what to do with it).
    exact = datetime if base is AwareDatetime else base
    if not isinstance(exact, type):
        raise TypeError(f"{name}: annotation {annotation!r} has no fast check; add one to canonical_check")
    constants[f"_t{n}"] = exact
    tests = [f"type(x) is _t{n}"]
    for k, m in enumerate(metadata):
        if isinstance(m, SqlType):  # the store's, not a bound
            continue
        known = _BOUNDS.get(type(m))
        if known is None:
            raise TypeError(f"{name}: constraint {m!r} has no fast check; add one to _BOUNDS")
        attribute, test = known
        const = f"_c{n}_{k}"
        constants[const] = _same_type(exact, getattr(m, attribute))
        tests.append(test.format(const))
    if base is AwareDatetime:
        # Decoders give UTC times timezone.utc itself: asking it for its offset costs 0.15 µs.
        constants["_UTC"] = UTC
        tests.append("(x.tzinfo is _UTC or x.utcoffset() is not None)")
    elif base is Decimal:
        tests.append("x.is_finite()")  # pydantic refuses NaN and the infinities
    return tests
