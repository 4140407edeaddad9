"""A partner's token-request cap over any window: per day (Guesty's 5 a day) or per hour
(Booking.com's 30 an hour), declared on PartnerInfo and enforced by the stored-token auth."""

from __future__ import annotations

import pytest

from syncd.connectors import registry
from syncd.connectors.base import PartnerInfo
from syncd.http.auth import DAY_S, TokenCap


def info(**cap: object) -> PartnerInfo:
    return PartnerInfo(
        name="acme", base_url="https://x", token_url=None, rate_limits=(), max_concurrency=1,
        page_size=1, resources=frozenset(), credential_keys=frozenset(), **cap,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_per_day_cap_is_a_cap_over_24_hours() -> None:
    assert info(max_token_requests_per_day=5).token_cap == (5, DAY_S)
    assert info(max_token_requests=(30, 3600.0)).token_cap == (30, 3600.0)
    assert info().token_cap is None


def test_one_cap_only() -> None:
    with pytest.raises(ValueError, match="one token cap"):
        info(max_token_requests_per_day=5, max_token_requests=(30, 3600.0))


def test_the_cap_describes_its_window_and_refuses_nonsense() -> None:
    assert TokenCap(5).describe() == "24 h" and TokenCap(30, 3600.0).describe() == "1 h"
    assert TokenCap(3, 90.0).describe() == "90 s"
    for bad in ((0, 60.0), (1, 0.0)):
        with pytest.raises(ValueError):
            TokenCap(*bad)


def test_the_partners_declare_their_documented_caps() -> None:
    partners = registry.partners()
    assert partners["guesty"].token_cap == (5, DAY_S)
    assert partners["booking_com"].token_cap == (30, 3600.0)
    assert partners["booking_com"].queue and not partners["guesty"].queue
