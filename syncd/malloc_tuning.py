"""Keep glibc's malloc from handing memory back to the kernel on every page of a sync.

Each page is a ~140 KB response body plus a hundred records' worth of objects, allocated
and freed within milliseconds. By default glibc serves blocks over its mmap threshold
(128 KB at start) with mmap and trims the heap's top once 128 KB of it are free, so the
same memory goes back to the kernel and is faulted in again, page by page, many times a
second; on VMs whose balloon device reports free pages to the host, each such first touch
also faults in the host. Measured with bench/ingest.py's scenario at 300k listings: the
daemon's minor page faults per sync fell from 124k to 17k (full) and from 77k to 18k
(all-changed), its system time by 14 % and 36 %. With the same parameters set through
the environment (a 64 MB trim threshold), three interleaved pairs showed its CPU per record
~0.7 µs (~4 %) lower. Freed memory is kept, up to the trim threshold, instead of returned:
peak RSS in bench/ingest.py rose 1-2 MB, the 10-minute soak's steady RSS 90.6 -> 95.5 MB.

Applied with ``mallopt`` at start. glibc's environment variables (``MALLOC_MMAP_THRESHOLD_``
and friends) set the same parameters before the process starts; an operator who set any
of them has chosen, and nothing is changed here. Not glibc (musl, macOS): nothing to do.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MIB = 1024 * 1024
SETTINGS: tuple[tuple[int, int], ...] = (
    (M_MMAP_THRESHOLD, 4 * MIB),  # response bodies come from the heap, reused
    # Free heap kept up to this before it is returned, and the heap's growth step. Larger
    # values (64 / 16 MB) saved no more page faults at 300k listings and kept more memory.
    (M_TRIM_THRESHOLD, 16 * MIB),
    (M_TOP_PAD, 4 * MIB),
)
OPERATOR_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "GLIBC_TUNABLES",
)


def tune_malloc(environ: Mapping[str, str] = os.environ) -> bool:
    """Apply ``SETTINGS`` to this process's allocator; True if glibc accepted them."""
    if not sys.platform.startswith("linux") or any(name in environ for name in OPERATOR_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no libc symbol table, or a libc without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)
