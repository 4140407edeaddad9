"""Records rendered once, ahead of serving, for throughput benchmarks (``--prerender``).

A partner renders its JSON on its own servers; the simulator renders it on the cores the
daemon and PostgreSQL share: a few µs per listing, half the simulator's CPU in a full
sync and a tenth of all three processes' together. Rendering every base record before the
server listens takes that cost out of the measured window without changing one byte
served.

The bytes live in an unlinked temporary file, read back with ``pread`` from the page cache,
so the process heap stays as small as without it: the account holds only offsets (8 bytes
per record). A page of consecutive indexes is one read. Not a ``memfd``: with the same
bytes in one, PostgreSQL spends several µs more CPU per record in a large full sync (even
with the memfd built but left unused), for a reason not established.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from array import array
from collections.abc import Callable, Sequence

# Records rendered per write while building (bounded memory while rendering 1,000,000).
_CHUNK = 4096
# One read covers a page when its indexes span at most this many times their number.
_SPAN_FACTOR = 4


def _backing_file() -> int:
    with tempfile.TemporaryFile(prefix="syncd-simulator-records-") as handle:
        return os.dup(handle.fileno())  # the file is unlinked: this descriptor keeps it


class PrerenderedRecords:
    """``render(i)`` for every ``i`` in ``[0, count)``, stored once and read back by index."""

    def __init__(self, count: int, render: Callable[[int], bytes]) -> None:
        self.count = count
        self._render = render
        self._fd = _backing_file()
        self._closer = weakref.finalize(self, os.close, self._fd)
        offsets = array("q", [0])
        position = 0
        for start in range(0, count, _CHUNK):
            block = [render(i) for i in range(start, min(count, start + _CHUNK))]
            for record in block:
                position += len(record)
                offsets.append(position)
            data = b"".join(block)
            written = 0
            while written < len(data):
                written += os.pwrite(self._fd, data[written:], offsets[start] + written)
        self._offsets = offsets
        self.nbytes = position

    def get(self, indexes: Sequence[int]) -> list[bytes]:
        """The records at ``indexes``, in that order; an index past ``count`` is rendered."""
        if not indexes:
            return []
        low, high = min(indexes), max(indexes)
        if low < 0 or high >= self.count:
            return [self._one(i) for i in indexes]
        offsets = self._offsets
        if high - low + 1 > _SPAN_FACTOR * len(indexes):
            return [self._read(offsets[i], offsets[i + 1]) for i in indexes]
        base = offsets[low]
        span = self._read(base, offsets[high + 1])
        return [span[offsets[i] - base : offsets[i + 1] - base] for i in indexes]

    def _one(self, i: int) -> bytes:
        if 0 <= i < self.count:
            return self._read(self._offsets[i], self._offsets[i + 1])
        return self._render(i)

    def _read(self, start: int, end: int) -> bytes:
        data = os.pread(self._fd, end - start, start)
        if len(data) != end - start:
            raise OSError(f"short read of prerendered records: {len(data)} of {end - start} bytes")
        return data

    def close(self) -> None:
        self._closer()
