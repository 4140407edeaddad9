"""Structured logs: one JSON event per line, stable snake_case event names, secrets redacted.

Redaction is a processor, not a habit: keys that name secrets are masked, and any value
that contains a registered secret (tokens, client secrets) is masked wherever it appears,
including inside exception text.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "***"
_SECRET_KEY = re.compile(r"(secret|token|password|authorization|api[_-]?key|cookie|credential)", re.I)
MIN_SECRET_LENGTH = 6
# A token is still masked this long after it expires (a late error message may quote it).
EXPIRED_TOKEN_GRACE_S = 3600.0


class _Secrets:
    """The registered secrets, found in a text in time that grows with the text, not with
    how many are registered. A shard of 10,000 integrations registers 20,000 and more
    (client secrets, and a token a day each); testing each with ``in`` costs ~2 ms per
    logged string at 20,000, so a request's log line would cost more than the request.
    Past ``_SCAN_FROM`` secrets, every ``MIN_SECRET_LENGTH``-character window of the text
    is looked up among the secrets' last characters (their ends, not their starts: tokens
    often share a prefix, as JWTs do ``eyJhbG``). Tokens are registered with their expiry
    and forgotten an hour after it, so the set does not grow with uptime; secrets without
    an expiry stay."""

    _SCAN_FROM = 32  # below this many, one ``in`` per secret is cheaper than the scan

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._by_end: dict[str, set[str]] = {}
        self._expiry: dict[str, float] = {}  # secret -> unix time it may be forgotten at
        self._count = 0
        self._next_prune = 0.0

    def __len__(self) -> int:
        return self._count

    def add(self, value: str, expires_at: float | None) -> None:
        held = self._by_end.setdefault(value[-MIN_SECRET_LENGTH:], set())
        if value in held:
            if expires_at is None:
                self._expiry.pop(value, None)
            elif value in self._expiry:
                self._expiry[value] = max(self._expiry[value], expires_at + EXPIRED_TOKEN_GRACE_S)
        else:
            held.add(value)
            self._count += 1
            if expires_at is not None:
                self._expiry[value] = expires_at + EXPIRED_TOKEN_GRACE_S
        now = time.time()
        if now >= self._next_prune:
            self._next_prune = now + 60.0
            self.prune(now)

    def prune(self, now: float) -> None:
        for value in [v for v, until in self._expiry.items() if until <= now]:
            del self._expiry[value]
            end = value[-MIN_SECRET_LENGTH:]
            held = self._by_end[end]
            held.discard(value)
            if not held:
                del self._by_end[end]
            self._count -= 1

    def redact(self, text: str) -> str:
        if len(text) < MIN_SECRET_LENGTH or not self._count:
            return text
        found: set[str] = set()
        if self._count < self._SCAN_FROM:
            found.update(secret for held in self._by_end.values() for secret in held if secret in text)
        else:
            by_end = self._by_end
            for end in range(MIN_SECRET_LENGTH, len(text) + 1):
                candidates = by_end.get(text[end - MIN_SECRET_LENGTH : end])
                if candidates:
                    found.update(s for s in candidates if len(s) <= end and text.startswith(s, end - len(s)))
        if not found:
            return text
        for secret in sorted(found, key=len, reverse=True):  # a secret inside another: the longer first
            text = text.replace(secret, REDACTED)
        return text


_SECRETS = _Secrets()


def register_secret(value: str | None, expires_at: float | None = None) -> None:
    """Mask ``value`` in every future log line (ignored when too short to be meaningful).
    ``expires_at`` (unix time) for tokens: masked until an hour after it, then forgotten."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        _SECRETS.add(value, expires_at)


def redact_text(text: str) -> str:
    return _SECRETS.redact(text)


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    # Cached: log keys are a small vocabulary, and uncached this is a regex per field of
    # every event, a tenth of the partner client's own CPU per request.
    return bool(_SECRET_KEY.search(key)) and not key.endswith(("_at", "_count", "_s"))


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(key, str) and _secret_key(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", v) for v in value]
    return value


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key != "event":
            event[key] = _redact_value(key, event[key])
    return event


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog once per process (the CLI calls this; tests use capture_logs)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound)
