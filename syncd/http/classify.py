"""Error classification in one place: HTTP status + headers + body -> an error of the tree.

Pure functions; the client calls ``classify`` on every response and retries by class
(DESIGN.md "Error classes"). Partner quirks (errors under HTTP 200, auth failures sent as
403 or as HTTP 500 with a code) plug in through ``PartnerRules``.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncd import errors

BodyCheck = Callable[[int, Any], errors.PartnerError | None]


@dataclass(frozen=True)
class PartnerRules:
    """A partner's deviations from plain HTTP semantics."""

    auth_statuses: frozenset[int] = frozenset({401})
    body_error: BodyCheck | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify(
    status: int, headers: Mapping[str, str], body: Any, rules: PartnerRules, now: datetime | None = None
) -> errors.PartnerError | None:
    """Return the error this response represents, or None when it is a success."""
    if rules.body_error is not None:
        found = rules.body_error(status, body)
        if found is not None:
            return found
    if 200 <= status < 300:
        return None
    detail = _detail(body)
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"), now)
        return errors.RateLimited(f"429 Too Many Requests{detail}", retry_after=retry_after)
    if status in rules.auth_statuses:
        return errors.AuthFailed(f"{status} authentication failed{detail}", status=status)
    if status in (408, 425) or status >= 500:
        return errors.PartnerUnavailable(f"{status} from partner{detail}", status=status)
    if 300 <= status < 400:
        return errors.PartnerRejected(f"unexpected redirect {status}", status=status)
    return errors.PartnerRejected(f"{status} rejected by partner{detail}", status=status)


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "title"):
            if isinstance(body.get(key), str):
                return f": {body[key][:200]}"
    return ""


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, errors.PartnerUnavailable | errors.RateLimited)
