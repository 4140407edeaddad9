"""Airbnb's [assumed] webhook scheme: a timestamped HMAC-SHA256 of the raw body, checked
in constant time against every configured secret; events name records or a new secret."""

from __future__ import annotations

import time

import pytest

from syncd.connectors.airbnb.webhooks import SCHEME, SIGNATURE_HEADER
from syncd.connectors.webhooks import Incoming, Rejected, Target, hmac_sign

SECRET = "shared-hmac-secret-0123456789"
BODY = b'{"event":"reservation.updated","object_id":"HM10000003"}'


def incoming(signature: str, body: bytes = BODY, at: float | None = None) -> Incoming:
    return Incoming({SIGNATURE_HEADER: signature}, {}, body, time.time() if at is None else at)


def test_a_signed_delivery_verifies_with_any_configured_secret() -> None:
    now = int(time.time())
    assert (
        SCHEME.verify(incoming(hmac_sign(SECRET, BODY, now)), ["old-secret-0123456789", SECRET], 300) is None
    )


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("", "signature"),
        ("t=abc,v1=00", "signature"),
        ("v1=" + "0" * 64, "signature"),
        (hmac_sign("another-secret-0123456789", BODY, int(time.time())), "signature"),
        (hmac_sign(SECRET, BODY + b" ", int(time.time())), "signature"),  # the body changed
        (hmac_sign(SECRET, BODY, int(time.time()) - 3600), "replay"),
    ],
)
def test_forged_or_replayed_deliveries_are_rejected(signature: str, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        SCHEME.verify(incoming(signature), [SECRET], 300)
    assert caught.value.reason == reason


def test_events_name_records_or_carry_a_new_secret() -> None:
    assert SCHEME.parse(BODY).targets == (Target("reservations", "HM10000003"),)
    assert SCHEME.parse(b'{"event":"listing.deleted","object_id":7000001}').targets == (
        Target("properties", "7000001"),
    )
    rotated = SCHEME.parse(b'{"event":"client_secret.rotated","client_secret":"s3cr3t-new-value"}')
    assert rotated.new_client_secret == "s3cr3t-new-value" and rotated.targets == ()
    assert "s3cr3t" not in repr(rotated)
    assert SCHEME.parse(b'{"event":"message.created","object_id":1}').targets == ()
    for bad in (b"[]", b'{"event":"listing.updated","object_id":"x1"}', b'{"event":"client_secret.rotated"}'):
        with pytest.raises(ValueError):
            SCHEME.parse(bad)
    assert SCHEME.secret_problem("short") is not None and SCHEME.secret_problem(SECRET) is None
