"""Cheap deterministic primitives shared by the simulated datasets.

Everything here is on the per-record hot path of page rendering, so it trades
generality for speed: integer hashing instead of ``random``, cached timestamp strings
instead of ``datetime`` formatting per record.
"""

from __future__ import annotations

import datetime as dt

MASK64 = (1 << 64) - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY_MS = 86_400_000


def mix64(x: int) -> int:
    """splitmix64 finaliser: a well-spread 64-bit hash of ``x`` in four integer ops."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def stream_key(seed: int, stream: int) -> int:
    """Independent hash stream per (seed, purpose), so listings and reservations don't correlate."""
    return mix64(mix64(seed & MASK64) ^ (stream * 0x632BE59BD9B4E019 & MASK64))


def object_id(prefix: int, index: int, digest: int) -> bytes:
    """A 24-hex Mongo-style ObjectId: 8 hex of ``prefix + index`` then 16 hex of ``digest``.

    The leading "timestamp" grows with ``index``, so index order equals ``_id`` order.
    """
    return b"%08x%016x" % (prefix + index, digest)


def object_id_index(prefix: int, value: str) -> int | None:
    """The index encoded in an id made by ``object_id`` (the caller re-derives and compares)."""
    if len(value) != 24:
        return None
    try:
        head = int(value[:8], 16)
        int(value[8:], 16)
    except ValueError:
        return None
    return head - prefix


class IsoClock(dict[int, bytes]):
    """Epoch milliseconds → ``b"2025-08-17T15:00:00.000Z"``, as a bounded memo: ``clock[ms]``.

    A dict subclass so that a hit is a plain C-level lookup; base records share
    timestamps in small groups, so most lookups on a page are hits.
    """

    def __init__(self, limit: int = 65_536) -> None:
        super().__init__()
        self._limit = limit

    def __missing__(self, ms: int) -> bytes:
        if len(self) >= self._limit:
            self.clear()
        text = self[ms] = format_iso_ms(ms).encode()
        return text


def format_iso_ms(ms: int) -> str:
    """Epoch milliseconds → ISO 8601 UTC with milliseconds and ``Z``."""
    day, rest = divmod(ms, _DAY_MS)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return "%sT%02d:%02d:%02d.%03dZ" % (_day_text(day), hour, minute, second, millis)  # noqa: UP031 - hot path


_DAYS: dict[int, str] = {}


def _day_text(day: int) -> str:
    text = _DAYS.get(day)
    if text is None:
        if len(_DAYS) > 100_000:
            _DAYS.clear()
        text = _DAYS[day] = (_EPOCH + dt.timedelta(days=day)).strftime("%Y-%m-%d")
    return text


def format_date(day: int) -> str:
    """Days since the epoch → ``YYYY-MM-DD``."""
    return _day_text(day)


def parse_iso_ms(value: str) -> int:
    """ISO 8601 date or datetime → epoch milliseconds; naive values are taken as UTC.

    Raises ``ValueError`` on anything else, which the API turns into a 400.
    """
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    delta = moment - _EPOCH
    return (delta.days * _DAY_MS) + delta.seconds * 1000 + delta.microseconds // 1000


def day_ms(day: int) -> int:
    """Days since the epoch → epoch milliseconds at midnight UTC."""
    return day * _DAY_MS
