"""Keep glibc's malloc from handing memory back to the kernel on every page of a sync.

Each page is a ~140 KB response body plus a hundred records' worth of objects, allocated
and freed within milliseconds. By default glibc serves blocks over its mmap threshold
(128 KB at start) with mmap and trims the heap's top once 128 KB of it are free, so the
same memory goes back to the kernel and is faulted in again, page by page, many times a
second; on VMs whose balloon device reports free pages to the host, each such first touch
also faults in the host. Keeping that memory on the heap removes most of the daemon's
minor page faults in a sync, with a sixth to a third of its system time, and a few percent
of its CPU per record. Freed memory is kept, up to the trim threshold, instead of
returned: a few MB more RSS.

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
    # values save no more page faults and keep more memory.
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
