"""Sparse record state over a deterministic base range, with O(page + overrides) queries.

A dataset of N records is described by formulas: record ``i`` has version 1 and the
timestamp ``t0 + (i // group) s``. Mutations only ever touch a few records, so they are
kept as overrides: per index a version, a timestamp, a deleted flag. Two sorted lists
make range queries cheap without materialising anything:

- ``excluded``: base indexes that left their base position (updated or deleted);
- ``live``: ``(timestamp, index)`` of every overridden record that still exists,
  and ``live_indexes``, the same records by index (for ``_id`` order without a sort).

Mutation timestamps are always later than every base timestamp, so in timestamp order
the result of a query is "base range minus excluded" followed by a slice of ``live``.
Index order (== ``_id`` order == ``createdAt`` order) merges the two instead.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from syncd.simulator.encoding import mix64

ALL_BEFORE = -(1 << 62)
ALL_AFTER = 1 << 62


@dataclass
class OverrideTable:
    """Per-index overrides of a base range ``[0, base_count)`` plus inserted indexes."""

    base_count: int
    group: int
    t0_ms: int
    total: int = -1
    base_version: int = 1
    versions: dict[int, int] = field(default_factory=dict)
    timestamps: dict[int, int] = field(default_factory=dict)
    created: dict[int, int] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    excluded: list[int] = field(default_factory=list)
    live: list[tuple[int, int]] = field(default_factory=list)
    live_indexes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.total < 0:
            self.total = self.base_count

    # -- per-record state -------------------------------------------------------------

    def base_ts(self, i: int) -> int:
        return self.t0_ms + (i // self.group) * 1000

    def max_base_ts(self) -> int:
        return self.base_ts(max(0, self.base_count - 1))

    def version(self, i: int) -> int:
        return self.versions.get(i, self.base_version)

    def timestamp(self, i: int) -> int:
        ts = self.timestamps.get(i)
        return self.base_ts(i) if ts is None else ts

    def is_live(self, i: int) -> bool:
        return 0 <= i < self.total and i not in self.deleted

    def copy(self) -> OverrideTable:
        """A snapshot, O(overrides), so a long truth stream is not torn by concurrent mutations."""
        return OverrideTable(
            self.base_count,
            self.group,
            self.t0_ms,
            self.total,
            self.base_version,
            dict(self.versions),
            dict(self.timestamps),
            dict(self.created),
            set(self.deleted),
            list(self.excluded),
            list(self.live),
            list(self.live_indexes),
        )

    # -- mutations --------------------------------------------------------------------

    def _leave_position(self, i: int) -> None:
        if i in self.timestamps:
            pos = bisect.bisect_left(self.live, (self.timestamps[i], i))
            if pos < len(self.live) and self.live[pos] == (self.timestamps[i], i):
                del self.live[pos]
                del self.live_indexes[bisect.bisect_left(self.live_indexes, i)]
        elif i < self.base_count:
            bisect.insort(self.excluded, i)

    def update(self, i: int, ts: int) -> int:
        """Give live record ``i`` a new version at ``ts``; returns the new version."""
        if not self.is_live(i):
            raise KeyError(i)
        self._leave_position(i)
        self.timestamps[i] = ts
        self.versions[i] = self.version(i) + 1
        bisect.insort(self.live, (ts, i))
        bisect.insort(self.live_indexes, i)
        return self.versions[i]

    def insert(self, ts: int) -> int:
        """Append a new record created at ``ts``; returns its index."""
        i = self.total
        self.total += 1
        self.timestamps[i] = ts
        self.created[i] = ts
        self.versions[i] = self.base_version
        bisect.insort(self.live, (ts, i))
        self.live_indexes.append(i)  # the largest index so far
        return i

    def delete(self, i: int, ts: int) -> None:
        if not self.is_live(i):
            raise KeyError(i)
        self._leave_position(i)
        self.timestamps[i] = ts
        self.versions[i] = self.version(i) + 1
        self.deleted.add(i)

    # -- queries ----------------------------------------------------------------------

    def _first_base_at(self, t: int) -> int:
        """Smallest base index whose base timestamp is >= ``t``."""
        if t <= self.t0_ms:
            return 0
        seconds = -((self.t0_ms - t) // 1000)  # ceil((t - t0) / 1000)
        return min(seconds * self.group, self.base_count)

    def _window(self, lo: int, hi: int) -> _Window:
        a = self._first_base_at(lo)
        b = max(a, self._first_base_at(hi))
        ex_a = bisect.bisect_left(self.excluded, a)
        ex_b = bisect.bisect_left(self.excluded, b)
        v_lo = bisect.bisect_left(self.live, (lo, -1))
        v_hi = max(v_lo, bisect.bisect_left(self.live, (hi, -1)))
        return _Window(a, b, ex_a, (b - a) - (ex_b - ex_a), v_lo, v_hi)

    def count(self, lo: int = ALL_BEFORE, hi: int = ALL_AFTER) -> int:
        """Live records with ``lo <= timestamp < hi``."""
        w = self._window(lo, hi)
        return w.base_n + (w.v_hi - w.v_lo)

    def select(self, lo: int, hi: int, by_timestamp: bool, start: int, stop: int) -> list[int]:
        """Indexes at positions ``[start, stop)`` of the live records in ``[lo, hi)``.

        Ordered by (timestamp, index) when ``by_timestamp`` else by index.
        """
        w = self._window(lo, hi)
        stop = min(stop, w.base_n + (w.v_hi - w.v_lo))
        if start >= stop:
            return []
        if by_timestamp:
            return self._select_by_timestamp(w, start, stop)
        return self._select_by_index(w, start, stop)

    def _select_by_timestamp(self, w: _Window, start: int, stop: int) -> list[int]:
        out: list[int] = []
        if start < w.base_n:
            out = self._walk_base(self._base_nth(w, start), min(stop, w.base_n) - start)
        if stop > w.base_n:
            first = w.v_lo + max(0, start - w.base_n)
            out.extend(i for _, i in self.live[first : w.v_lo + stop - w.base_n])
        return out

    def _base_nth(self, w: _Window, k: int) -> int:
        """The k-th (0-based) non-excluded index of ``[a, b)``, by binary search."""
        ex = self.excluded
        lo, hi = w.a + k, w.b - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if (mid + 1 - w.a) - (bisect.bisect_right(ex, mid) - w.ex_a) >= k + 1:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _walk_base(self, x: int, want: int) -> list[int]:
        ex = self.excluded
        p = bisect.bisect_left(ex, x)
        n_ex = len(ex)
        if p == n_ex or ex[p] >= x + want:
            return list(range(x, x + want))  # common case: no overrides in the way
        out: list[int] = []
        while len(out) < want:
            if p < n_ex and ex[p] == x:
                p += 1
            else:
                out.append(x)
            x += 1
        return out

    def _select_by_index(self, w: _Window, start: int, stop: int) -> list[int]:
        if w.v_lo == 0 and w.v_hi == len(self.live):
            extra = self.live_indexes  # every override matches: already in index order
        else:
            extra = sorted(i for _, i in self.live[w.v_lo : w.v_hi])
        ex = self.excluded

        def base_below(x: int) -> int:
            c = min(max(x, w.a), w.b)
            return (c - w.a) - (bisect.bisect_left(ex, c) - w.ex_a)

        # Smallest x whose rank (elements < x + 1) exceeds start: the first element to emit.
        lo = 0
        hi = max(w.b, extra[-1] + 1 if extra else 0)
        while lo < hi:
            mid = (lo + hi) // 2
            if base_below(mid + 1) + bisect.bisect_left(extra, mid + 1) > start:
                hi = mid
            else:
                lo = mid + 1
        x = max(lo, w.a)
        p = bisect.bisect_left(ex, x)
        q = bisect.bisect_left(extra, lo)
        out: list[int] = []
        while len(out) < stop - start:
            while x < w.b and p < len(ex) and ex[p] == x:
                p += 1
                x += 1
            base_next = x if x < w.b else ALL_AFTER
            extra_next = extra[q] if q < len(extra) else ALL_AFTER
            if base_next < extra_next:
                out.append(base_next)
                x += 1
            else:
                out.append(extra_next)
                q += 1
        return out


@dataclass(frozen=True, slots=True)
class _Window:
    a: int
    b: int
    ex_a: int
    base_n: int
    v_lo: int
    v_hi: int


def pick_live(table: OverrideTable, h: int) -> int | None:
    """A live index derived from ``h``, probing forward past deleted ones."""
    for step in range(min(table.total, 4096)):
        i = (h + step) % table.total
        if table.is_live(i):
            return i
    return None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated list request over the half-open window ``[lo_ms, hi_ms)`` of update times."""

    limit: int = 100
    offset: int = 0
    order: str = "id"  # "id", or by update time: "asc" / "desc"
    lo_ms: int = ALL_BEFORE
    hi_ms: int = ALL_AFTER
    after_id: int | None = None  # the partner's id of the record the page starts after


def select_page(table: OverrideTable, q: ListQuery, after: int | None) -> tuple[list[int], int]:
    """A page of indexes and how many match: by index (``q.order`` "id"), else by (time,
    index) ascending ("asc") or descending ("desc"); with ``after`` (an index), only those
    past that record's *current* place (none if it is deleted)."""
    lo, hi, order, offset, limit = q.lo_ms, q.hi_ms, q.order, q.offset, q.limit
    count = table.count(lo, hi)
    if order == "id":
        return table.select(lo, hi, False, offset, offset + limit), count
    start, stop = 0, count  # positions, in ascending (time, id) order, the cursor leaves
    if after is not None:
        if not table.is_live(after):
            return [], count
        t = table.timestamp(after)
        before = table.count(lo, min(max(t, lo), hi))  # in the window, earlier than the cursor
        at = 0
        if lo <= t < hi:
            tied = table.select(t, t + 1, True, 0, table.count(t, t + 1))
            before += bisect.bisect_left(tied, after)
            at = 1
        start, stop = (before + at, count) if order == "asc" else (0, before)
    if order == "asc":
        a = start + offset
        return table.select(lo, hi, True, a, min(stop, a + limit)), count
    b = stop - offset
    picked = table.select(lo, hi, True, max(start, b - limit), b) if b > start else []
    picked.reverse()
    return picked, count


def mutation_seconds(key: int, count: int, clock_s: int) -> list[tuple[int, int]]:
    """(hash, second) of ``count`` mutations after ``clock_s``: groups of one to four share
    a second, one to three seconds apart (the tie groups of whole-second partners)."""
    out, left = [], 0
    for n in range(count):
        h = mix64(key ^ n)
        if left == 0:
            left = 1 + (h >> 40) % 4
            clock_s += 1 + (h >> 44) % 3
        left -= 1
        out.append((h, clock_s))
    return out
