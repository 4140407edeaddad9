"""One Guesty account's dataset: deterministic, mutable over (logical) time, never materialised.

State is the base parameters plus sparse overrides (``sparse.OverrideTable``), so an
account of 1,000,000 listings costs the same memory as one of 1,000, and a query costs
O(page + overrides). Records are rendered on demand by ``guesty_render`` (or, for
throughput benchmarks, once ahead into a temporary file: ``GuestyAccount.prerender``).

Mutations use a logical clock that starts after the newest base timestamp and advances
by a few milliseconds per small group of mutations (members of a group share one
``lastUpdatedAt``, which exercises a client's tie handling). Runs are reproducible:
the same constructor arguments and the same sequence of ``mutate`` calls give the same
bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

import orjson

from syncd.simulator import encoding
from syncd.simulator.prerender import PrerenderedRecords
from syncd.simulator.profiles.guesty import query as guesty_query
from syncd.simulator.profiles.guesty import render as guesty_render
from syncd.simulator.profiles.guesty import v3
from syncd.simulator.profiles.guesty.query import ListQuery
from syncd.simulator.sparse import ALL_AFTER, ALL_BEFORE, OverrideTable

Kind = Literal["listing", "reservation"]
# How reservations are rendered: the legacy API's records, or reservations-v3's.
ReservationApi = Literal["legacy", "v3"]


class TruthRecord(NamedTuple):
    """A record exactly as the API serves it now, plus its internal version (not served)."""

    kind: Kind
    id: str
    version: int
    payload: dict[str, object]


@dataclass(frozen=True, slots=True)
class MutationSummary:
    """Ids touched by one ``mutate`` call, per kind, and the logical time span it covered."""

    listings_updated: tuple[str, ...]
    listings_inserted: tuple[str, ...]
    listings_deleted: tuple[str, ...]
    reservations_updated: tuple[str, ...]
    reservations_inserted: tuple[str, ...]
    first_ts: str | None
    last_ts: str | None
    # Listings whose pictures were edited (also in ``listings_updated``: an edit bumps the
    # listing's lastUpdatedAt); the other updated listings kept their pictures.
    listings_photos: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "listings": {
                "updated": list(self.listings_updated),
                "inserted": list(self.listings_inserted),
                "deleted": list(self.listings_deleted),
                "photos": list(self.listings_photos),
            },
            "reservations": {
                "updated": list(self.reservations_updated),
                "inserted": list(self.reservations_inserted),
            },
            "firstTimestamp": self.first_ts,
            "lastTimestamp": self.last_ts,
        }


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One page: ``count`` is the total number of matches, ``records`` the rendered slice."""

    count: int
    records: list[bytes]


class GuestyAccount:
    """The dataset behind one Guesty ``client_id``: listings and (legacy) reservations."""

    def __init__(
        self,
        seed: int,
        listings: int,
        reservations_per_listing: int = 2,
        malformed_listings: frozenset[int] = frozenset(),
        generation: int = 0,
    ) -> None:
        """``generation`` > 0 is the same account after every record was rewritten that many
        times: each record's version is ``1 + generation`` and its timestamp lies after every
        timestamp of earlier generations (benchmarks of an all-changed resync, O(1) memory)."""
        if listings < 0 or reservations_per_listing < 0:
            raise ValueError("listings and reservations_per_listing must be >= 0")
        bad = [i for i in malformed_listings if not 0 <= i < listings]
        if bad:
            raise ValueError(f"malformed listing indexes out of range: {sorted(bad)[:5]}")
        self.seed = seed
        self.malformed = frozenset(malformed_listings)
        # Listings served as invalid JSON (a raw NUL byte in the title): a broken partner
        # whose page no decoder accepts, on every request. Set directly by tests.
        self.broken_json: frozenset[int] = frozenset()
        self._render_l = guesty_render.ListingRenderer(seed)
        self._render_r = guesty_render.ReservationRenderer(seed, self._render_l, listings)
        if generation < 0:
            raise ValueError("generation must be >= 0")
        self.generation = generation
        reservations = listings * reservations_per_listing
        span_ms = 1000 * max(
            listings // guesty_render.LISTING_TIE_GROUP, reservations // guesty_render.RESERVATION_TIE_GROUP
        )
        # Whole days after the previous generation's data (and a margin for its mutations).
        t0_ms = guesty_render.T0_MS + generation * (span_ms // 86_400_000 + 30) * 86_400_000
        base_version = 1 + generation
        self.listing_table = OverrideTable(
            listings, guesty_render.LISTING_TIE_GROUP, t0_ms, base_version=base_version
        )
        self.reservation_table = OverrideTable(
            reservations, guesty_render.RESERVATION_TIE_GROUP, t0_ms, base_version=base_version
        )
        self._clock_ms = max(self.listing_table.max_base_ts(), self.reservation_table.max_base_ts())
        self._mutations = 0
        # Photo edits (sparse): a listing's pictures after its edits, and how many of its
        # version bumps were photo edits (they leave its other fields as they were).
        self.pictures: dict[int, tuple[tuple[int, int], ...]] = {}
        self.photo_bumps: dict[int, int] = {}
        self._base_listings: PrerenderedRecords | None = None
        self._base_reservations: PrerenderedRecords | None = None

    def prerender(self) -> None:
        """Render every record's base state now (see ``prerender``): a full sync of an
        unmutated account is then served without rendering. Mutated accounts render as before."""
        listings, reservations = self.listing_table, self.reservation_table
        render_l, render_r = self._render_l.render_base, self._render_r.render_base
        self._base_listings = PrerenderedRecords(
            listings.base_count, lambda i: render_l(i, listings.t0_ms, listings.base_version)
        )
        self._base_reservations = PrerenderedRecords(
            reservations.base_count, lambda j: render_r(j, reservations.t0_ms, reservations.base_version)
        )

    # -- ids and single records ---------------------------------------------------------

    def listing_id(self, i: int) -> str:
        return self._render_l.listing_id(i).decode()

    def reservation_id(self, j: int) -> str:
        return self._render_r.reservation_id(j).decode()

    def listing_index(self, listing_id: str) -> int | None:
        """Index of a live listing id, or None (unknown, deleted, or not ours)."""
        i = encoding.object_id_index(guesty_render.LISTING_ID_PREFIX, listing_id)
        if i is None or not self.listing_table.is_live(i) or self.listing_id(i) != listing_id:
            return None
        return i

    def reservation_index(self, reservation_id: str) -> int | None:
        j = encoding.object_id_index(guesty_render.RESERVATION_ID_PREFIX, reservation_id)
        if j is None or not self.reservation_table.is_live(j) or self.reservation_id(j) != reservation_id:
            return None
        return j

    def render_listing(
        self,
        i: int,
        table: OverrideTable | None = None,
        photos: tuple[dict[int, tuple[tuple[int, int], ...]], dict[int, int]] | None = None,
    ) -> bytes:
        """Listing ``i`` as served now (or as of a snapshot: ``table`` and ``photos``)."""
        t = table or self.listing_table
        pictures, bumps = photos or (self.pictures, self.photo_bumps)
        created = t.created.get(i)
        body = self._render_l.render(
            i,
            t.version(i) - bumps.get(i, 0),  # a photo edit changes nothing else
            t.timestamp(i),
            self._render_l.base_created(i) if created is None else created,
            i in self.malformed,
        )
        edited = pictures.get(i)
        if edited is not None:
            start = body.index(b'"pictures":[') + 11
            end = body.index(b"]", start) + 1  # no caption holds a bracket
            body = body[:start] + self._render_l.pictures_json(i, edited) + body[end:]
        return body.replace(b'"title":"', b'"title":"\x00', 1) if i in self.broken_json else body

    def render_reservation(self, j: int, table: OverrideTable | None = None) -> bytes:
        t = table or self.reservation_table
        created = t.created.get(j)
        return self._render_r.render(
            j,
            t.version(j),
            t.timestamp(j),
            self._render_r.base_created(j) if created is None else created,
        )

    def get_listing(self, listing_id: str) -> bytes | None:
        i = self.listing_index(listing_id)
        return None if i is None else self.render_listing(i)

    def get_reservation(self, reservation_id: str) -> bytes | None:
        j = self.reservation_index(reservation_id)
        return None if j is None else self.render_reservation(j)

    def get_reservation_v3(self, reservation_id: str) -> bytes | None:
        record = self.get_reservation(reservation_id)
        return None if record is None else v3.v3_record(record)

    # -- list queries ---------------------------------------------------------------------

    def query_listings(self, query: ListQuery) -> QueryResult:
        """One page of listings, already projected to ``query.fields``."""
        indexes, count = self._select(self.listing_table, query, self.listing_index)
        if query.fields is not None and set(query.fields) <= {"_id"}:
            # The id-only scan (deletion detection) must not pay for full records.
            ids = self._render_l.listing_id
            return QueryResult(count, [b'{"_id":"%s"}' % ids(i) for i in indexes])
        if not self.malformed and not self.broken_json and not self.listing_table.versions:
            # Hot path of a full sync: every record is at its base state.
            if self._base_listings is not None:
                records = self._base_listings.get(indexes)
            else:
                render = self._render_l.render_base
                t0, version = self.listing_table.t0_ms, self.listing_table.base_version
                records = [render(i, t0, version) for i in indexes]
        else:
            records = [self.render_listing(i) for i in indexes]
        return QueryResult(count, _project(records, query.fields))

    def query_reservations(self, query: ListQuery) -> QueryResult:
        indexes, count = self._select(self.reservation_table, query, self.reservation_index)
        if not self.reservation_table.versions and self._base_reservations is not None:
            records = self._base_reservations.get(indexes)
        elif not self.reservation_table.versions:
            render = self._render_r.render_base
            t0, version = self.reservation_table.t0_ms, self.reservation_table.base_version
            records = [render(j, t0, version) for j in indexes]
        else:
            records = [self.render_reservation(j) for j in indexes]
        return QueryResult(count, _project(records, query.fields))

    def search_reservations_v3(self, q: v3.SearchQuery) -> tuple[list[bytes], bool]:
        """One reservations-v3 page, rendered as v3 does, and whether more follow
        (``pagination.hasMore``). ``_id`` and ``createdAt`` share index order, so an
        unfiltered walk on either costs O(page + overrides); filters and the stay-date
        sorts scan the live reservations (fine for a test double)."""
        table = self.reservation_table
        if not q.filtered and q.sort in ("_id", "createdAt"):
            count = table.count()
            if q.descending:
                stop = max(0, count - q.skip)
                picked = table.select(ALL_BEFORE, ALL_AFTER, False, max(0, stop - q.limit), stop)
                picked.reverse()
            else:
                picked = table.select(ALL_BEFORE, ALL_AFTER, False, q.skip, q.skip + q.limit)
        else:
            matches = [j for j in range(table.total) if j not in table.deleted and self._v3_match(j, q)]
            if q.sort in ("checkIn", "checkOut"):
                at = 2 if q.sort == "checkIn" else 3
                stay = self._render_r.stay
                matches.sort(key=lambda j: (stay(j)[at], j))
            if q.descending:
                matches.reverse()
            count = len(matches)
            picked = matches[q.skip : q.skip + q.limit]
        records = [v3.v3_record(self.render_reservation(j)) for j in picked]
        return records, q.skip + len(picked) < count

    def _v3_match(self, j: int, q: v3.SearchQuery) -> bool:
        table = self.reservation_table
        if q.statuses is not None and self._render_r.status(j, table.version(j)).decode() not in q.statuses:
            return False
        check_in_day, check_out_day, _, _ = self._render_r.stay(j)
        created = table.created.get(j)
        created_ms = self._render_r.base_created(j) if created is None else created
        return (
            v3.within(check_in_day, q.check_in_days)
            and v3.within(check_out_day, q.check_out_days)
            and v3.within(created_ms, q.created_ms)
        )

    @staticmethod
    def _select(
        table: OverrideTable, q: ListQuery, resolve: Callable[[str], int | None]
    ) -> tuple[list[int], int]:
        if q.id_eq is not None:
            i = resolve(q.id_eq)
            hit = i is not None and q.lo_ms <= table.timestamp(i) < q.hi_ms
            matches = [i] if hit and i is not None else []
            return matches[q.skip : q.skip + q.limit], len(matches)
        count = table.count(q.lo_ms, q.hi_ms)
        if q.descending:
            stop = max(0, count - q.skip)
            picked = table.select(q.lo_ms, q.hi_ms, q.by_timestamp, max(0, stop - q.limit), stop)
            picked.reverse()
        else:
            picked = table.select(q.lo_ms, q.hi_ms, q.by_timestamp, q.skip, q.skip + q.limit)
        return picked, count

    # -- mutations ------------------------------------------------------------------------

    def mutate(self, count: int, seed: int) -> MutationSummary:
        """Apply ``count`` deterministic mutations (40 % listing updates, a quarter of them
        photo edits, 15 % inserts, 10 % deletions, 25 % reservation updates, 10 %
        reservation inserts)."""
        touched: dict[str, list[str]] = {k: [] for k in ("lu", "li", "ld", "ru", "ri", "lp")}
        key = encoding.stream_key(self.seed ^ (seed * 0x9E3779B1), 7 + self._mutations)
        first_ts: int | None = None
        group_left = 0
        for n in range(count):
            h = encoding.mix64(key ^ n)
            if group_left == 0:
                group_left = 1 + (h >> 40) % 4
                self._clock_ms += 1 + (h >> 44) % 997
            group_left -= 1
            ts = self._clock_ms
            first_ts = ts if first_ts is None else first_ts
            kind, ident = self._mutate_one(h, ts)
            touched[kind].append(ident)
            if kind == "lp":
                touched["lu"].append(ident)
        self._mutations += 1

        def ids(kind: str) -> tuple[str, ...]:
            return tuple(dict.fromkeys(touched[kind]))

        return MutationSummary(
            ids("lu"),
            ids("li"),
            ids("ld"),
            ids("ru"),
            ids("ri"),
            None if first_ts is None else encoding.format_iso_ms(first_ts),
            None if first_ts is None else encoding.format_iso_ms(self._clock_ms),
            ids("lp"),
        )

    def _mutate_one(self, h: int, ts: int) -> tuple[str, str]:
        roll = h % 100
        if roll < 40 or 55 <= roll < 65:
            i = self._pick_live(self.listing_table, h >> 8, self.malformed)
            if i is not None and roll < 40:
                self.listing_table.update(i, ts)
                if (h >> 60) & 3 == 0:
                    self._edit_pictures(i, h)
                    return "lp", self.listing_id(i)
                return "lu", self.listing_id(i)
            if i is not None:
                self.listing_table.delete(i, ts)
                return "ld", self.listing_id(i)
        if roll < 65:
            return "li", self.listing_id(self.listing_table.insert(ts))
        if roll < 90:
            j = self._pick_live(self.reservation_table, h >> 8, frozenset())
            if j is not None:
                self.reservation_table.update(j, ts)
                return "ru", self.reservation_id(j)
        return "ri", self.reservation_id(self.reservation_table.insert(ts))

    def edit_listing(self, listing_id: str, *, photos: bool) -> None:
        """One update of a live listing, now: a photo edit (its pictures alone change) or an
        edit of its other fields (its pictures stay). For tests that need to know which."""
        i = self.listing_index(listing_id)
        if i is None:
            raise KeyError(listing_id)
        self._clock_ms += 1
        self.listing_table.update(i, self._clock_ms)
        if photos:
            self._edit_pictures(i, encoding.mix64(self.seed ^ self._clock_ms))

    def _edit_pictures(self, i: int, h: int) -> None:
        """A photo edit of listing ``i`` (its update already counted): a picture added,
        removed or re-captioned. [assumption] such an edit moves the listing's
        ``lastUpdatedAt`` (partners.md does not say; without it no incremental list sees it)."""
        pictures = list(self.pictures.get(i) or self._render_l.base_pictures(i))
        op = (h >> 56) % 3
        if op == 0 and len(pictures) < 8:
            pictures.append((max(k for k, _ in pictures) + 1, (h >> 50) & 15))
        elif op == 1 and len(pictures) > 1:
            del pictures[(h >> 45) % len(pictures)]
        else:
            n = (h >> 45) % len(pictures)
            k, caption = pictures[n]
            pictures[n] = (k, (caption + 1 + (h >> 50) % 15) & 15)  # always another caption
        self.pictures[i] = tuple(pictures)
        self.photo_bumps[i] = self.photo_bumps.get(i, 0) + 1

    @staticmethod
    def _pick_live(table: OverrideTable, h: int, avoid: frozenset[int]) -> int | None:
        """A live index derived from ``h``, probing forward past deleted/avoided ones."""
        if table.total == 0:
            return None
        start = h % table.total
        for step in range(min(table.total, 4096)):
            i = (start + step) % table.total
            if table.is_live(i) and i not in avoid:
                return i
        return None

    # -- ground truth ---------------------------------------------------------------------

    def truth_listings(self) -> Iterator[TruthRecord]:
        """Every valid live listing in ``_id`` order, streamed from a snapshot of the overrides."""
        table = self.listing_table.copy()
        photos = (dict(self.pictures), dict(self.photo_bumps))
        for i in range(table.total):
            if i in table.deleted or i in self.malformed or i in self.broken_json:
                continue
            payload = orjson.loads(self.render_listing(i, table, photos))
            yield TruthRecord("listing", self.listing_id(i), table.version(i), payload)

    def truth_reservations(self) -> Iterator[TruthRecord]:
        table = self.reservation_table.copy()
        for j in range(table.total):
            if j in table.deleted:
                continue
            payload = orjson.loads(self.render_reservation(j, table))
            yield TruthRecord("reservation", self.reservation_id(j), table.version(j), payload)

    def truth_photos_ndjson(self) -> Iterator[bytes]:
        """Every picture of every valid live listing, in listing ``_id`` then array order:
        NDJSON ``{"kind":"photo","id":"<listing id>:<picture id>","listing","position",
        "version" (the listing's),"payload" (the picture as served)}``."""
        table = self.listing_table.copy()
        photos = (dict(self.pictures), dict(self.photo_bumps))
        for i in range(table.total):
            if i in table.deleted or i in self.malformed or i in self.broken_json:
                continue
            listing = orjson.loads(self.render_listing(i, table, photos))
            for position, picture in enumerate(listing.get("pictures") or []):
                yield (
                    orjson.dumps(
                        {
                            "kind": "photo",
                            "id": f"{listing['_id']}:{picture['_id']}",
                            "listing": listing["_id"],
                            "position": position,
                            "version": table.version(i),
                            "payload": picture,
                        }
                    )
                    + b"\n"
                )

    def truth_ndjson(
        self, kinds: tuple[Kind, ...] = ("listing", "reservation"), reservations: ReservationApi = "legacy"
    ) -> Iterator[bytes]:
        """NDJSON lines ``{"kind","id","version","payload"}`` without a parse/serialise round
        trip; ``reservations`` names the API whose rendering the reservations' payloads are."""
        photos = (dict(self.pictures), dict(self.photo_bumps))
        for kind in kinds:
            table = (self.listing_table if kind == "listing" else self.reservation_table).copy()
            for i in range(table.total):
                if i in table.deleted or (
                    kind == "listing" and (i in self.malformed or i in self.broken_json)
                ):
                    continue
                if kind == "listing":
                    ident, body = self._render_l.listing_id(i), self.render_listing(i, table, photos)
                else:
                    ident, body = self._render_r.reservation_id(i), self.render_reservation(i, table)
                    if reservations == "v3":
                        body = v3.v3_record(body)
                yield b'{"kind":"%s","id":"%s","version":%d,"payload":%s}\n' % (
                    kind.encode(),
                    ident,
                    table.version(i),
                    body,
                )

    def deleted_listing_ids(self) -> list[str]:
        return [self.listing_id(i) for i in sorted(self.listing_table.deleted)]

    def repair_listing(self, listing_id: str) -> bool:
        """The partner fixes a malformed listing in place, without touching its timestamp
        (so only a dead-letter replay, not an incremental sync, brings it back)."""
        i = self.listing_index(listing_id)
        if i is None or i not in self.malformed:
            return False
        self.malformed = self.malformed - {i}
        return True

    def malformed_listing_ids(self) -> list[str]:
        return [self.listing_id(i) for i in sorted(self.malformed)]

    def live_listing_count(self) -> int:
        return self.listing_table.total - len(self.listing_table.deleted)

    def reservation_count(self) -> int:
        return self.reservation_table.total - len(self.reservation_table.deleted)


def _project(records: list[bytes], fields: tuple[str, ...] | None) -> list[bytes]:
    return records if fields is None else [guesty_query.project(r, fields) for r in records]
