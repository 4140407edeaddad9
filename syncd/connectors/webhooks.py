"""Incoming webhooks: what a partner package declares, in partner-neutral terms.

A partner that notifies changes exports a ``WebhookScheme`` as ``PartnerInfo.webhooks``:

* ``verify(incoming, secrets, tolerance_s)`` decides whether a request is the partner's,
  on the raw body and headers, against the integration's configured secrets (several
  during a rotation). It raises ``Rejected`` ("signature" or "replay") and returns the
  delivery id the scheme carries (a Svix ``svix-id``), or None when it carries none.
* ``parse(body)`` names the event and what changed: ``Target(resource, external_id)``
  records the daemon then fetches by id. An event type the scheme does not act on has no
  targets (answered 2xx, so the partner stops retrying); a body that is not the partner's
  event shape raises ``ValueError`` (answered 400).

An event may also carry a new client secret the partner rotated (``Event.new_client_secret``):
the receiver then switches the integration to it (tried, committed, verified, rolled back:
``Connector.rotate_secret``) before answering, and answers an error status when the new
secret does not work, so the old one stays and the partner sees the failure.

A delivery without an id of its own is deduplicated by a digest of its body: a partner's
redelivery sends the same bytes. Deliveries are never applied from their body: the body
says *that* a record changed, the fetch reads what it is now, and the store keeps the
newest by the partner's timestamp, so duplicates, reordering and stale deliveries change
nothing twice.

Generic verifiers live here (HTTP Basic, a secret token in the URL, a timestamped
HMAC-SHA256 of the body) and in
``syncd.svix``; a partner package picks one and adds its event mapping.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as random_secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from syncd import svix


class Rejected(Exception):
    """The request is not the partner's: a bad signature, or a stale timestamp."""

    def __init__(self, reason: Literal["signature", "replay"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Incoming:
    """One webhook request as received: lower-cased header names, the query, raw body."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    received_at: float  # Unix seconds on this host's clock


@dataclass(frozen=True)
class Target:
    resource: str
    external_id: str


@dataclass(frozen=True)
class Event:
    name: str
    targets: tuple[Target, ...] = ()
    # A client secret the partner rotated and announces (never logged).
    new_client_secret: str | None = field(default=None, repr=False)


Verify = Callable[[Incoming, Sequence[str], float], "str | None"]


@dataclass(frozen=True)
class WebhookScheme:
    verify: Verify
    parse: Callable[[bytes], Event]
    # Why a configured secret cannot work (checked at start, without echoing it), or None.
    secret_problem: Callable[[str], str | None] = lambda _secret: None
    # A fresh secret of the scheme's form (``syncd demo`` makes its own).
    new_secret: Callable[[], str] = lambda: random_secrets.token_urlsafe(24)


def body_delivery_id(body: bytes) -> str:
    """The delivery id of a scheme without one: a redelivery repeats the same bytes."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def svix_verify(incoming: Incoming, secrets: Sequence[str], tolerance_s: float) -> str | None:
    try:
        return svix.verify(secrets, incoming.headers, incoming.body, incoming.received_at, tolerance_s)
    except svix.SignatureError as exc:
        raise Rejected("signature", str(exc)) from None
    except svix.TimestampError as exc:
        raise Rejected("replay", str(exc)) from None


def svix_secret_problem(secret: str) -> str | None:
    try:
        svix.key_of(secret)
    except ValueError as exc:
        return str(exc)
    return None


def svix_new_secret() -> str:
    return svix.SECRET_PREFIX + base64.b64encode(random_secrets.token_bytes(24)).decode()


def basic_new_secret() -> str:
    return "syncd:" + random_secrets.token_urlsafe(18)


def basic_verify(incoming: Incoming, secrets: Sequence[str], _tolerance_s: float) -> str | None:
    """HTTP Basic with one of the configured ``login:password`` pairs. Nothing is signed
    and nothing is timed: TLS protects the request, and replays are harmless because a
    delivery only makes us read the partner's current record."""
    scheme, _, encoded = incoming.headers.get("authorization", "").partition(" ")
    try:
        offered = base64.b64decode(encoded.strip(), validate=True) if scheme.lower() == "basic" else b""
    except (binascii.Error, ValueError):
        offered = b""
    if not _any_equal(offered, secrets):
        raise Rejected("signature", "missing or wrong Basic credentials")
    return None


def basic_secret_problem(secret: str) -> str | None:
    return None if ":" in secret else "a Basic credential is written 'login:password'"


def url_token_verify(param: str) -> Verify:
    """The URL is the secret: a per-integration token in the query parameter ``param``."""

    def verify(incoming: Incoming, secrets: Sequence[str], _tolerance_s: float) -> str | None:
        if not _any_equal(incoming.query.get(param, "").encode(), secrets):
            raise Rejected("signature", f"missing or wrong '{param}' in the URL")
        return None

    return verify


def url_token_problem(secret: str) -> str | None:
    # Guessable tokens would make the URL guessable too.
    return None if len(secret) >= 16 else "a URL token needs at least 16 characters"


def _any_equal(offered: bytes, secrets: Sequence[str]) -> bool:
    matched = False
    for secret in secrets:
        # Every secret is compared (no early exit), each in constant time.
        matched |= hmac.compare_digest(offered, secret.encode())
    return matched and bool(offered)


_SIGNATURE_ITEM = re.compile(r"\s*([a-z0-9]+)=([^,\s]+)\s*")


def hmac_timestamped_verify(header: str) -> Verify:
    """``header: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`` (several
    ``v1`` during a rotation): the timestamp is signed with the body, so a replay outside
    the tolerance is refused, and every configured secret is tried in constant time."""

    def verify(incoming: Incoming, secrets: Sequence[str], tolerance_s: float) -> str | None:
        items = [m.groups() for m in _SIGNATURE_ITEM.finditer(incoming.headers.get(header, ""))]
        stamp = next((v for k, v in items if k == "t"), "")
        offered = [v.encode() for k, v in items if k == "v1"]
        if not stamp.isdigit() or not offered:
            raise Rejected("signature", f"missing or malformed {header}")
        signed = stamp.encode() + b"." + incoming.body
        matched = False
        for secret in secrets:
            expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
            for candidate in offered:
                matched |= hmac.compare_digest(candidate, expected)
        if not matched:
            raise Rejected("signature", f"no {header} signature matches a configured secret")
        if abs(incoming.received_at - int(stamp)) > tolerance_s:
            raise Rejected("replay", f"{header} timestamp outside the tolerance")
        return None

    return verify


def hmac_sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``t=...,v1=...`` value ``hmac_timestamped_verify`` accepts (senders, tests)."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def hmac_secret_problem(secret: str) -> str | None:
    # A short shared secret is guessable offline from any one signed delivery.
    return None if len(secret) >= 16 else "an HMAC signing secret needs at least 16 characters"
