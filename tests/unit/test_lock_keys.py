"""Advisory-lock keys: a run's bigint lock and the two int4 halves of its fence."""

from __future__ import annotations

import pytest

from syncd.store.postgres import fence_keys, lock_key

INT4 = range(-(2**31), 2**31)


@pytest.mark.parametrize(
    ("key", "halves"),
    [
        (0, (0, 0)),
        (-1, (-1, -1)),
        (2**63 - 1, (2**31 - 1, -1)),
        (-(2**63), (-(2**31), 0)),
        (2**31, (0, -(2**31))),
    ],
)
def test_a_fence_key_is_the_lock_key_split_into_signed_halves(key: int, halves: tuple[int, int]) -> None:
    assert fence_keys(key) == halves


def test_every_run_gets_halves_postgresql_accepts_as_int4() -> None:
    for resource in ("properties", "reservations", "guests", "locks"):
        high, low = fence_keys(lock_key("acme", resource))
        assert high in INT4 and low in INT4
        assert (high << 32) | (low & 0xFFFF_FFFF) == lock_key("acme", resource)
