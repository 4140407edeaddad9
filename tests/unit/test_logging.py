"""Secrets never reach a log line: by key name, by registered value, inside nested fields."""

from __future__ import annotations

import io
import random
import string
import time

import orjson
import pytest
import structlog

from syncd.observability import logging as syncd_logging
from syncd.observability.logging import _Secrets


def test_secrets_are_redacted_by_key_and_by_value() -> None:
    stream = io.StringIO()
    syncd_logging.configure("info", "json", stream=stream)
    try:
        syncd_logging.register_secret("tok-3f9a8b7c6d5e")
        log = structlog.get_logger()
        log.info(
            "api_call",
            client_secret="hunter2-secret",
            headers={"Authorization": "Bearer tok-3f9a8b7c6d5e", "Accept": "json"},
            error="401 for token tok-3f9a8b7c6d5e",
            token_expires_at="2026-01-01",
        )
    finally:
        syncd_logging.configure("info", "console")
    line = stream.getvalue()
    event = orjson.loads(line)
    assert "hunter2" not in line and "tok-3f9a8b7c6d5e" not in line
    assert event["client_secret"] == "***"
    assert event["headers"] == {"Authorization": "***", "Accept": "json"}
    assert event["error"] == "401 for token ***"
    assert event["token_expires_at"] == "2026-01-01"  # timestamps about tokens are not secrets


@pytest.mark.parametrize("registered", [5, 20_000])
def test_every_registered_secret_is_masked_however_many_there_are(registered: int) -> None:
    # 20,000: a shard of 10,000 integrations (a client secret and a token each). Past a
    # few dozen the secrets are found by a scan of the text, not one search per secret.
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_."
    secrets = _Secrets()
    values = ["".join(rng.choices(alphabet, k=rng.choice((8, 32, 40)))) for _ in range(registered)]
    for value in values:
        secrets.add(value, None)
    first, middle, last = values[0], values[registered // 2], values[-1]
    assert secrets.redact(f"{first} was refused") == "*** was refused"
    assert secrets.redact(f"token={middle}&x=1, again {middle}") == "token=***&x=1, again ***"
    assert secrets.redact(f"Bearer {last}") == "Bearer ***"
    assert secrets.redact(f"{first}{last}") == "******"
    assert secrets.redact("GET /v1/listings 200") == "GET /v1/listings 200"
    assert secrets.redact(first[:-1]) == first[:-1]  # a prefix of a secret is not the secret
    # A JWT-like family sharing its start, and one secret inside a longer one.
    secrets.add("eyJhbGciOiJIUzI1NiJ9.aaaaaa", None)
    secrets.add("eyJhbGciOiJIUzI1NiJ9.aaaaaa.signature", None)
    assert secrets.redact("auth eyJhbGciOiJIUzI1NiJ9.aaaaaa.signature!") == "auth ***!"
    assert secrets.redact("eyJhbGciOiJIUzI1NiJ9.aaaaab") == "eyJhbGciOiJIUzI1NiJ9.aaaaab"


def test_tokens_are_forgotten_an_hour_after_they_expire_and_secrets_never() -> None:
    secrets = _Secrets()
    now = time.time()
    secrets.add("client-secret-value", None)
    secrets.add("old-token-expired-2h-ago", now - 2 * 3600)
    secrets.add("token-expired-10-min-ago", now - 600)
    secrets.add("live-token-value", now + 86_400)
    secrets.prune(now)
    assert len(secrets) == 3
    assert secrets.redact("old-token-expired-2h-ago") == "old-token-expired-2h-ago"
    for kept in ("client-secret-value", "token-expired-10-min-ago", "live-token-value"):
        assert secrets.redact(f"[{kept}]") == "[***]"
    secrets.add("client-secret-value", now - 7200)  # registered again as a token: still kept
    secrets.prune(now)
    assert secrets.redact("client-secret-value") == "***"
