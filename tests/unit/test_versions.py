"""A rollout moves a stable, monotonic share of integrations; a pin always wins."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.connectors.versions import Rollout, bucket, chosen_version

IDS = [f"acct-{n:03d}" for n in range(1, 101)]


def moved(percent: float, ids: list[str] = IDS) -> set[str]:
    rollout = Rollout("v3", percent)
    return {i for i in ids if chosen_version(i, None, "v1", rollout) == "v3"}


def test_thirty_percent_moves_thirty_of_a_hundred_give_or_take_five() -> None:
    assert 25 <= len(moved(30)) <= 35


def test_membership_is_stable_across_calls_and_independent_of_the_other_integrations() -> None:
    assert moved(30) == moved(30)
    assert moved(30, IDS[:10]) == moved(30) & set(IDS[:10])


def test_widening_a_rollout_only_adds_integrations() -> None:
    assert moved(0) == set()
    assert moved(10) <= moved(30) <= moved(50) <= moved(100)
    assert moved(100) == set(IDS)


def test_a_pinned_version_wins_over_the_rollout() -> None:
    assert chosen_version("acct-001", "v1", "v1", Rollout("v3", 100)) == "v1"
    assert chosen_version("acct-001", "v3", "v1", None) == "v3"
    assert chosen_version("acct-001", None, "v1", None) == "v1"


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=20))
def test_buckets_fall_in_range(integration_id: str, version: str) -> None:
    assert 0 <= bucket(integration_id, version) < 100


def test_successive_rollouts_do_not_pick_the_same_integrations_first() -> None:
    first = {i for i in IDS if bucket(i, "v3") < 30}
    second = {i for i in IDS if bucket(i, "v4") < 30}
    assert first != second


def test_a_partner_declares_distinct_versions_the_first_its_default() -> None:
    from syncd.connectors.base import DEFAULT_VERSION, PartnerInfo

    def info(versions: tuple[str, ...] | None = None) -> PartnerInfo:
        extra = {} if versions is None else {"versions": versions}
        return PartnerInfo(
            name="acme",
            base_url="https://api.acme.invalid/v1",
            token_url=None,
            rate_limits=(),
            max_concurrency=1,
            page_size=10,
            resources=frozenset({"properties"}),
            credential_keys=frozenset({"api_key"}),
            **extra,  # type: ignore[arg-type]
        )

    assert info().versions == (DEFAULT_VERSION,) and info().default_version == DEFAULT_VERSION
    assert info(("v1", "v2")).default_version == "v1"
    assert info(("v1", "v2")).schema.versions == ("v1", "v2")
    for bad in ((), ("v1", "v1")):
        with pytest.raises(ValueError, match="distinct"):
            info(bad)
