"""Query-string values as simulated APIs read them, for any profile: a value a partner
refuses is a ``QueryError`` (its message goes into the partner's 400 envelope), never a
guess. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from syncd.simulator.encoding import parse_iso_ms


class QueryError(ValueError):
    """A list query the API refuses (400); the message is the partner's error text."""


def int_param(params: Mapping[str, str], name: str, default: int | None, lo: int) -> int | None:
    """``name`` as an integer of at least ``lo``; absent or empty: ``default``."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < lo:
        raise QueryError(f"'{name}' must be an integer >= {lo}")
    return int(raw)


def moment_ms(value: str, name: str, end: bool) -> int:
    """A date or a date-time (UTC when naive) as epoch ms; an ``end`` bound is inclusive: a
    date covers its whole day, a time its whole second."""
    try:
        ms = parse_iso_ms(value)
    except ValueError:
        raise QueryError(f"'{name}' must be YYYY-MM-DD or YYYY-MM-DD HH:MM:SS") from None
    return ms + (86_400_000 if len(value) == 10 else 1000) if end else ms
