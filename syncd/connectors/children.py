"""Child resources: records a partner serves per parent record, over a window of dates (a
listing's calendar days), walked parent by parent.

* **The walk.** Every parent id is listed first, then the parents are fetched in one
  total order (``parent_key``), one ``Page`` per parent. Its checkpoint names the parent
  just done, so a run that stops (a crash, a deadline, a drain) resumes after the last
  parent committed; the walk's last page resets it, and the next run walks them all again
  (a child has no update filter to go by). A parent that joins during the walk is taken
  by the next run; one gone before its turn (None from the fetch) yields an empty page.
* **The window.** ``ResourceSettings.window_days`` from ``window_start`` (today, UTC, by
  default). Children outside it are neither fetched nor deleted.
* **The record.** A child that does not name its parent (a calendar day carries only its
  date) is stored as ``{"parent": "<id>", "record": <the partner's bytes, verbatim>}``
  (``child_record``), so its row, its dead letter and its adapter all know whose it is.

``for_parents`` streams an explicit list of parent ids (a task engine's child tasks use it
with the ids it was given); ``walk`` lists every parent first and resumes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors.base import Page
from syncd.store.types import RawRecord

# A parent's children in the window, as the partner sent them; None when the parent is gone.
FetchChildren = Callable[[str, "Window"], Awaitable["Sequence[RawRecord] | None"]]
_AFTER = "after_parent"


@dataclass(frozen=True, slots=True)
class Window:
    """The days ``first`` to ``last``, both included."""

    first: date
    last: date

    @classmethod
    def of(cls, settings: ResourceSettings, today: date | None = None) -> Window:
        first = settings.window_start or today or datetime.now(UTC).date()
        return cls(first, first + timedelta(days=settings.window_days - 1))


def parent_key(ident: str) -> tuple[int, str]:
    """A total order of ids in which decimal ids sort as numbers."""
    return len(ident), ident


def child_record(parent: str, raw: RawRecord) -> bytes:
    return b'{"parent":%s,"record":%s}' % (orjson.dumps(parent), bytes(raw))


async def for_parents(ids: Sequence[str], window: Window, fetch: FetchChildren) -> AsyncGenerator[Page, None]:
    """One page per parent of ``ids``, in their order, then the page that ends the walk."""
    for parent in ids:
        children = await fetch(parent, window) or ()
        yield Page([child_record(parent, raw) for raw in children], {_AFTER: parent})
    yield Page([], {_AFTER: None})


async def fetch_one(external_id: str, fetch: FetchChildren) -> bytes | None:
    """The stored record of one child, ``<parent id>:<YYYY-MM-DD>``, as the partner has it
    now (targeted fetches, dead-letter replay); None when it is gone."""
    parent, _, day = external_id.rpartition(":")
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise errors.PartnerRejected(f"not a child record's id: {external_id!r}") from None
    found = await fetch(parent, Window(when, when))
    return child_record(parent, found[0]) if found else None


async def walk(
    parents: AsyncIterator[list[str]],
    checkpoint: dict[str, Any] | None,
    window: Window,
    fetch: FetchChildren,
) -> AsyncGenerator[Page, None]:
    """Every parent's children, resuming after the parent the checkpoint names."""
    listed = {ident async for page in parents for ident in page}
    after = (checkpoint or {}).get(_AFTER)
    ids = sorted(listed, key=parent_key)
    if isinstance(after, str):
        ids = [i for i in ids if parent_key(i) > parent_key(after)]
    async for page in for_parents(ids, window, fetch):
        yield page


async def offset_ids(
    list_page: Callable[[int], Awaitable[Sequence[RawRecord]]],
    id_of: Callable[[RawRecord], str | None],
    page_size: int,
) -> AsyncGenerator[list[str], None]:
    """Every id of a list paged by offset, a page at a time. The list may shift under the
    walk: what it misses, the next walk sees (the deletion sweep confirms each candidate
    with a direct get before it deletes, and a child walk takes a new parent next run)."""
    offset = 0
    while True:
        page = await list_page(offset)
        yield [i for i in map(id_of, page) if i is not None]
        if len(page) < page_size:
            return
        offset += len(page)
