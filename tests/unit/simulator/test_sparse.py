"""OverrideTable against a brute-force model: every window, order and slice."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.simulator.sparse import ALL_AFTER, ALL_BEFORE, OverrideTable

T0 = 10_000

# (op, pick, clock step): op 0 update, 1 delete, 2 insert
_ops = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 3)), max_size=25)
_bound = st.one_of(st.none(), st.integers(T0 - 2_000, T0 + 15_000))


def _build(n: int, group: int, ops: list[tuple[int, int, int]]) -> OverrideTable:
    table = OverrideTable(n, group, T0)
    clock = table.max_base_ts()
    for op, pick, step in ops:
        clock += step if step else 0
        clock = max(clock, table.max_base_ts() + 1)
        live = [i for i in range(table.total) if table.is_live(i)]
        if op == 0 and live:
            table.update(live[pick % len(live)], clock)
        elif op == 1 and live:
            table.delete(live[pick % len(live)], clock)
        else:
            table.insert(clock)
    return table


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 50),
    group=st.integers(1, 8),
    ops=_ops,
    lo=_bound,
    hi=_bound,
    start=st.integers(0, 60),
    size=st.integers(0, 60),
)
def test_select_matches_brute_force(
    n: int, group: int, ops: list[tuple[int, int, int]], lo: int | None, hi: int | None, start: int, size: int
) -> None:
    table = _build(n, group, ops)
    low = ALL_BEFORE if lo is None else lo
    high = ALL_AFTER if hi is None else hi
    rows = [(table.timestamp(i), i) for i in range(table.total) if table.is_live(i)]
    matching = [r for r in rows if low <= r[0] < high]
    assert table.count(low, high) == len(matching)
    by_ts = [i for _, i in sorted(matching)]
    by_index = sorted(i for _, i in matching)
    assert table.select(low, high, True, start, start + size) == by_ts[start : start + size]
    assert table.select(low, high, False, start, start + size) == by_index[start : start + size]
    assert table.live_indexes == sorted(i for _, i in table.live)


def test_versions_and_deletion_bookkeeping() -> None:
    table = OverrideTable(10, 2, T0)
    ts = table.max_base_ts() + 1
    assert table.version(3) == 1
    assert table.update(3, ts) == 2
    assert table.update(3, ts + 5) == 3
    table.delete(3, ts + 9)
    assert not table.is_live(3)
    assert table.version(3) == 4
    new = table.insert(ts + 9)
    assert new == 10
    assert table.created[new] == ts + 9
    assert table.count() == 10  # 10 base - 1 deleted + 1 inserted
    assert table.excluded == [3]
    assert table.live == [(ts + 9, 10)]


def test_copy_is_independent() -> None:
    table = OverrideTable(5, 1, T0)
    snap = table.copy()
    table.update(1, table.max_base_ts() + 1)
    assert snap.version(1) == 1
    assert snap.count() == 5
    assert snap.select(ALL_BEFORE, ALL_AFTER, True, 0, 5) == [0, 1, 2, 3, 4]
    assert table.select(ALL_BEFORE, ALL_AFTER, True, 0, 5) == [0, 2, 3, 4, 1]
