"""Which properties each ``getReservations`` request names: pure, no I/O.

Requests are property-scoped and wall times sort like instants only within a timezone,
so the account's properties go in batches of one zone, about ``BATCH`` ids each (the URL
stays a few hundred bytes). A property lands in the bucket of its id's hash, so one
joining or leaving changes one batch (its digest), and only that batch is walked in full
again; the others keep their marks.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from syncd.connectors.cloudbeds import adapter, wire

BATCH = 100


@dataclass
class Hotels:
    """The account's properties: what each lends its reservations, and the walk's batches."""

    local: dict[str, adapter.Local] = field(default_factory=dict)
    batches: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (digest, zone, ids)
    digest: str = ""
    loaded: float = float("-inf")

    def build(self, hotels: list[wire.Hotel], batch: int) -> None:
        """Batches of one zone, each property in a bucket of its id's hash: a property
        joining or leaving changes one batch, not every later one."""
        self.local.clear()  # in place: normalizers hold this dict
        zones: dict[str, list[str]] = {}
        for h in hotels:
            local = self.local[str(h.propertyID)] = adapter.local_of(h)
            zones.setdefault(h.propertyTimezone if local.zone else "UTC", []).append(str(h.propertyID))  # type: ignore[arg-type]
        buckets: dict[tuple[str, int], list[str]] = {}
        for zone, ids in sorted(zones.items()):
            width = 1 << max(0, (len(ids) - 1) // batch).bit_length()  # changes only as the zone doubles
            for i in ids:
                buckets.setdefault((zone, int(_digest(i), 16) % width), []).append(i)
        self.batches = [(_digest((z, ids)), z, ids) for (z, _), ids in sorted(buckets.items())]
        self.digest = _digest([d for d, *_ in self.batches])
        self.loaded = time.monotonic()


def _digest(value: object) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=8).hexdigest()
