"""The Svix webhook signature scheme, both sides (several partners sign with Svix).

A Svix sender signs ``"{svix-id}.{svix-timestamp}.{raw body}"`` with HMAC-SHA256 under the
endpoint's secret and sends ``svix-id``, ``svix-timestamp`` (Unix seconds) and
``svix-signature``: space-separated ``v1,<base64 signature>`` entries, one per secret the
sender holds (two during a rotation). A secret is ``whsec_<base64 key>``; the HMAC key is
the decoded part.

Verification works on the raw bytes (re-serialised JSON does not verify), compares in
constant time (``hmac.compare_digest``) against every configured secret, so the receiver
accepts old and new secrets while a rotation is under way, and refuses a timestamp off
by more than the tolerance either way: a captured delivery replayed later is rejected
even though its signature is genuine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
ID_HEADER = "svix-id"
TIMESTAMP_HEADER = "svix-timestamp"
SIGNATURE_HEADER = "svix-signature"
# Svix's own libraries accept five minutes either way.
DEFAULT_TOLERANCE_S = 300.0


class SignatureError(Exception):
    """Missing headers, or no ``v1`` entry matches any secret."""


class TimestampError(Exception):
    """The timestamp is outside the tolerance (a replay, or a badly skewed clock)."""


def key_of(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError when it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a Svix secret is 'whsec_' followed by base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<signature>`` entry for one secret."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """What a Svix sender holding ``secrets`` sends with ``body``."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }


def verify(
    secrets: Sequence[str],
    received: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> str:
    """The delivery's ``svix-id`` when ``received`` (lower-cased header names) carries a
    valid signature of ``body`` by one of ``secrets`` and a fresh timestamp.

    Raises ``SignatureError`` or ``TimestampError``. The signature is checked first: an
    unsigned request learns nothing about the clock."""
    msg_id = received.get(ID_HEADER, "")
    stamp = received.get(TIMESTAMP_HEADER, "")
    offered = received.get(SIGNATURE_HEADER, "")
    if not msg_id or not stamp.isdigit() or not offered:
        raise SignatureError("missing or malformed svix headers")
    candidates = [
        _decoded(sig)
        for version, _, sig in (entry.partition(",") for entry in offered.split(" "))
        if version == "v1"
    ]
    signed = b"%s.%s.%s" % (msg_id.encode(), stamp.encode(), body)
    matched = False
    for secret in secrets:
        expected = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
        for candidate in candidates:
            # Every pair is compared (no early exit): the time taken does not tell which
            # secret or entry matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no v1 signature matches")
    if abs(now - int(stamp)) > tolerance_s:
        raise TimestampError("timestamp outside the tolerance")
    return msg_id


def _decoded(value: str) -> bytes:
    """A signature's bytes; an undecodable one matches nothing."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""
