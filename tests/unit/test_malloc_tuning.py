"""The daemon's allocator keeps page-sized blocks on its heap (see syncd/malloc_tuning.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# Allocates 1 MB and reports whether glibc served it with mmap (a fresh mapping, returned
# to the kernel when freed) instead of from the reusable heap.
PROBE = """
import ctypes, sys
from syncd.malloc_tuning import tune_malloc
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
applied = tune_malloc()
before = libc.mallinfo2().hblkhd
block = bytearray(1 << 20)
print(applied, libc.mallinfo2().hblkhd > before)
"""


def probe(**env: str) -> tuple[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    applied, mmapped = out.stdout.split()
    return applied, mmapped


def test_a_page_sized_block_comes_from_the_heap_once_tuned() -> None:
    assert probe() == ("True", "False")


def test_an_operator_s_own_malloc_settings_are_left_alone() -> None:
    # With the operator's 256 KB threshold (and nothing changed by syncd) 1 MB is mmapped.
    assert probe(MALLOC_MMAP_THRESHOLD_=str(256 * 1024)) == ("False", "True")
