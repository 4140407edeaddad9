"""Secrets never reach a log line: by key name, by registered value, inside nested fields."""

from __future__ import annotations

import io

import orjson
import structlog

from syncd.observability import logging as syncd_logging


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
