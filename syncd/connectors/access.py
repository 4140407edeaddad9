"""The push direction's contract: a lock provider's access codes, partner-neutral.

A lock partner's driver offers ``access_codes`` (an ``AccessCodes``); the push executor
(``syncd.engine.access``) decides what to create, change or delete and calls it. Each call
raises the client's errors (``syncd.errors``): a ``PartnerError`` whose class says whether
the partner may have acted (``acted_unknown``) is what the executor must reconcile before
trying again; ``RateLimited`` with ``retry_after`` (a device's budget is spent, nothing was
sent) puts the task back for that long. No call ever returns or logs the code itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from syncd import errors
from syncd.connectors.base import Connector

# What a provider reports about a code, in our words.
SETTING, SET, FAILED, REMOVING = "setting", "set", "failed", "removing"


@dataclass(frozen=True)
class DesiredCode:
    """One reservation's code as it should be: on ``device_id``, valid from ``starts_at`` to
    ``ends_at``. ``name`` finds it again among the device's codes (one per reservation);
    ``idempotency_key`` is stable per (reservation, this desired state)."""

    device_id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    idempotency_key: str


@dataclass(frozen=True)
class RemoteCode:
    """A code as the provider has it: its id, where, when, and how far it is (``SETTING``
    until the lock confirms it, ``SET``, ``FAILED`` with ``errors``, ``REMOVING``)."""

    id: str
    device_id: str
    name: str | None
    status: str
    starts_at: datetime | None
    ends_at: datetime | None
    errors: tuple[str, ...] = ()


class AccessCodes(Protocol):
    async def create(self, code: DesiredCode) -> RemoteCode:
        """A new code: a non-idempotent call, retried by the client only where the partner
        provably did not act (``acted_unknown`` is False)."""
        ...

    async def update(self, code_id: str, code: DesiredCode) -> RemoteCode:
        """Sets the code's validity to ``code``'s (absolute values: repeating it is harmless)."""
        ...

    async def delete(self, code_id: str, device_id: str) -> None:
        """Removes the code (on ``device_id``); a code the provider no longer has is removed
        already."""
        ...

    async def get(self, code_id: str) -> RemoteCode | None:
        """The code as it is now, or None when the provider has no such code."""
        ...

    def list(self, device_id: str) -> AsyncIterator[RemoteCode]:
        """Every code on the device (all pages)."""
        ...


def access_codes_of(connector: Connector) -> AccessCodes | None:
    """The driver's ``access_codes``, or None (a partner that pushes none)."""
    provider: AccessCodes | None = getattr(connector, "access_codes", None)
    return provider


def acted_unknown(exc: BaseException) -> bool:
    """Whether a failed write may still have been carried out by the partner: an answer
    lost after the request was sent (a timeout, a reset, a 5xx). A 429, a refused
    connection and a 4xx mean it was not (``errors.NotSent``, ``RateLimited``,
    ``PartnerRejected``)."""
    if isinstance(exc, errors.NotSent | errors.RateLimited | errors.PartnerRejected | errors.AuthFailed):
        return False
    return isinstance(exc, errors.PartnerError)
