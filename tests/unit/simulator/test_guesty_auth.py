"""Token issuing: the 5-per-24-h cap over a trailing window, expiry, revocation."""

from __future__ import annotations

import base64

import orjson

from syncd.simulator.profiles.guesty.auth import TokenIssuer


def test_five_tokens_per_trailing_day() -> None:
    issuer = TokenIssuer()
    tokens = [issuer.issue("acct", 1000.0 + k) for k in range(5)]
    assert all(t is not None for t in tokens)
    assert issuer.issue("acct", 2000.0) is None
    assert issuer.issue("other", 2000.0) is not None  # the cap is per client
    assert issuer.issue("acct", 1000.0 + 86_399) is None
    assert issuer.issue("acct", 1000.0 + 86_400) is not None  # the first issue left the window
    assert issuer.issue("acct", 1000.0 + 86_400) is None


def test_tokens_resolve_until_expiry() -> None:
    issuer = TokenIssuer(ttl_s=60)
    token = issuer.issue("acct", 100.0)
    assert token is not None
    assert token.to_json() == {
        "token_type": "Bearer",
        "access_token": token.access_token,
        "expires_in": 60,
        "scope": "open-api",
    }
    assert issuer.resolve(token.access_token, 159.9) == "acct"
    assert issuer.resolve(token.access_token, 160.0) is None
    assert issuer.resolve("garbage", 100.0) is None


def test_tokens_look_like_jwts_and_are_unique() -> None:
    issuer = TokenIssuer(max_per_window=None)
    seen = set()
    for k in range(20):
        token = issuer.issue("acct", float(k))
        assert token is not None
        _header, payload, signature = token.access_token.split(".")
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["sub"] == "acct" and claims["exp"] - claims["iat"] == 86_400
        assert signature
        seen.add(token.access_token)
    assert len(seen) == 20


def test_revoke_invalidates_every_token_of_a_client() -> None:
    issuer = TokenIssuer()
    a, b = issuer.issue("acct", 0.0), issuer.issue("other", 0.0)
    assert a is not None and b is not None
    assert issuer.revoke("acct") == 1
    assert issuer.resolve(a.access_token, 1.0) is None
    assert issuer.resolve(b.access_token, 1.0) == "other"
