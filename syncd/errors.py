"""The one error tree of syncd. Everything raised on purpose descends from ``SyncdError``.

    SyncdError
    ├── ConfigError                 bad configuration file or environment (exit code 2)
    ├── PartnerError                a partner call failed; ``error_class`` decides the retry policy
    │   ├── PartnerUnavailable      transient: 5xx, timeouts, resets, truncated or unparsable body
    │   ├── RateLimited             rate_limited: 429 or a throttle body; carries ``retry_after``
    │   ├── AuthFailed              auth: 401 (403 for some partners), token endpoint refused us
    │   ├── PartnerRejected         client: other 4xx; retrying cannot help
    │   └── OffHostRequest          a redirect or next-page link pointing off the partner's host
    ├── CircuitOpen                 the partner's breaker is open; fail fast, reschedule later
    ├── PaginationError             the partner's pagination went wrong (loops, shifting pages)
    ├── RecordRejected              data: one record failed validation (goes to dead letters)
    └── StoreError
        ├── StoreUnavailable        PostgreSQL unreachable or the connection broke (retryable)
        └── Conflict                serialization failure or deadlock (retryable)

Third-party exceptions are translated at the boundary (``syncd.http`` for httpx,
``syncd.store`` for asyncpg) with ``raise X from exc``; nothing above sees them.
"""

from __future__ import annotations

import enum
import time


class ErrorClass(enum.StrEnum):
    """How a failure is handled (DESIGN.md, "Error classes")."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    CLIENT = "client"
    DATA = "data"


class SyncdError(Exception):
    """syncd failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())


class ConfigError(SyncdError):
    """The configuration is invalid."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        super().__init__(f"invalid configuration ({len(problems)} problem(s)):\n{lines}")


class PartnerError(SyncdError):
    """The partner API call failed."""

    error_class: ErrorClass = ErrorClass.TRANSIENT

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PartnerUnavailable(PartnerError):
    """The partner is unavailable or answered with a server error."""

    error_class = ErrorClass.TRANSIENT


class NotSent(PartnerUnavailable):
    """The request never reached the partner (the connection was refused or could not be
    made): whatever it asked was not done, so even a non-idempotent request may go again."""


class UndecodableBody(PartnerUnavailable):
    """A 2xx body that no decoder accepts. Transient (truncation under load); when it
    persists, a connector can narrow it down to the broken record. ``body`` holds at most
    the first 64 KiB, for a dead letter."""

    def __init__(self, message: str, *, body: bytes = b"") -> None:
        super().__init__(message)
        self.body = body[:65_536]


class AnswerLost(PartnerUnavailable):
    """A success status arrived, then its body was cut (a reset, a truncation). Transient
    for a read; for a request that spends a single-use input (a rotating refresh token)
    it means the partner acted and its answer is gone."""


class RateLimited(PartnerError):
    """The partner throttled us."""

    error_class = ErrorClass.RATE_LIMITED

    def __init__(
        self, message: str | None = None, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class AuthFailed(PartnerError):
    """The partner refused our credentials."""

    error_class = ErrorClass.AUTH


class PartnerRejected(PartnerError):
    """The partner rejected the request; retrying it unchanged cannot succeed."""

    error_class = ErrorClass.CLIENT


class OffHostRequest(PartnerError):
    """Refused to send a request outside the partner's configured host."""

    error_class = ErrorClass.CLIENT


class CircuitOpen(SyncdError):
    """The partner's circuit breaker is open (or half-open, its probes taken)."""

    def __init__(self, message: str | None = None, *, retry_in: float = 0.0) -> None:
        super().__init__(message)
        self.retry_in = retry_in
        # When the breaker refused (monotonic clock). A breaker that closes after this lets
        # the run go again, even when the run's failure is only handled (written) later.
        self.refused_at = time.monotonic()


class PaginationError(SyncdError):
    """The partner's pagination is inconsistent."""


class RecordRejected(SyncdError):
    """A partner record failed validation."""

    error_class = ErrorClass.DATA


class StoreError(SyncdError):
    """The database operation failed."""


class StoreUnavailable(StoreError):
    """PostgreSQL is unreachable."""


class LeaseLost(StoreError):
    """A task's lease is no longer this worker's: it lapsed and was reclaimed. Nothing more
    of the task may be written by this worker."""


class Conflict(StoreError):
    """The transaction conflicted with another one and may be retried."""


class BatchAbandoned(SyncdError):
    """A batch rolled back because the batch before it in its run failed; that failure,
    raised by its own batch, is the run's."""
