"""Odd token responses: whatever a partner's token endpoint answers, the grant stores a
usable token instead of crashing after the request was counted against its token cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syncd.http.auth import MAX_TOKEN_LIFETIME_S, expiry, refresh_token, token_type


@pytest.mark.parametrize(
    ("body", "lifetime_s"),
    [
        ({"expires_in": 86_400}, 86_400),
        ({"expires_in": 1e12}, MAX_TOKEN_LIFETIME_S),  # past year 9999 without the clamp
        ({"expires_at": 1e20}, MAX_TOKEN_LIFETIME_S),
    ],
)
def test_expiry_stays_within_now_and_ten_years(body: dict[str, object], lifetime_s: float) -> None:
    found = expiry(body)
    assert found is not None
    expected = datetime.now(UTC) + timedelta(seconds=lifetime_s)
    assert abs((found - expected).total_seconds()) < 5


def test_expiry_unknown_when_absent_or_unusable() -> None:
    assert expiry({}) is None
    assert expiry({"expires_in": "86400"}) is None  # a string: not guessed at
    assert expiry({"expires_in": True}) is None
    assert expiry({"expires_in": -5}) is None  # used until refused, not fetched in a loop
    assert expiry({"expires_at": -1e20}) is None


def test_token_type_and_refresh_token_are_what_a_column_can_hold() -> None:
    assert token_type({"token_type": "bearer\x00"}) == "bearer"
    assert token_type({"token_type": 7}) == "Bearer"
    assert token_type({"token_type": "x" * 500}) == "x" * 40
    assert refresh_token({"refresh_token": 12345}) is None
    assert refresh_token({"refresh_token": ""}) is None
    assert refresh_token({"refresh_token": "r-1"}) == "r-1"
