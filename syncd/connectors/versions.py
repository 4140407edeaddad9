"""Which adapter version of a partner's API an integration runs: pinned, or rolled out.

Partners retire API versions on their own calendar (the field report's week-by-week
rollout: one test customer, then 10 %, 50 %, 100 %). An integration may pin a version in
its configuration; otherwise the partner's rollout decides: a stable share of
integrations runs the new version, the rest the partner's default.

Membership is a bucket in [0, 100) from a digest of the integration id and the rolled-out
version, so it is the same in every process and on every restart, independent of the
order or number of integrations, and monotonic: raising the percentage only adds
integrations (none flips back), which is what lets an operator widen a rollout without
churning the ones already moved. The version is part of the digest so that successive
rollouts do not always pick the same customers first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Rollout:
    """``percent`` of a partner's integrations (the unpinned ones) run ``version``."""

    version: str
    percent: float


def bucket(integration_id: str, version: str) -> float:
    """The integration's stable position in [0, 100) for a rollout of ``version``."""
    digest = hashlib.blake2b(f"{version}\x00{integration_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100


def chosen_version(integration_id: str, pinned: str | None, default: str, rollout: Rollout | None) -> str:
    if pinned is not None:
        return pinned
    if rollout is not None and bucket(integration_id, rollout.version) < rollout.percent:
        return rollout.version
    return default
