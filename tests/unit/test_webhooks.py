"""Webhook verification and event mapping, pure: the Svix scheme against its published
test vector, each partner's event shapes, and the configuration checks of secrets."""

from __future__ import annotations

import base64

import pytest

from syncd import errors, svix
from syncd.config import parse_settings
from syncd.connectors import registry
from syncd.connectors.webhooks import Incoming, Rejected, Target, basic_verify, url_token_verify

# Svix's documented example (docs.svix.com, "Verifying payloads manually").
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_headers(signature: str = VECTOR_SIGNATURE) -> dict[str, str]:
    return {"svix-id": VECTOR_ID, "svix-timestamp": str(VECTOR_TS), "svix-signature": signature}


def test_svix_signs_and_verifies_the_published_vector() -> None:
    assert svix.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE
    assert svix.verify([VECTOR_SECRET], vector_headers(), VECTOR_BODY, VECTOR_TS + 10) == VECTOR_ID
    # Several entries (a sender mid-rotation), unknown versions ignored, garbage tolerated.
    mixed = f"v2,abc v1,!!notbase64 v1,{base64.b64encode(b'x' * 32).decode()} {VECTOR_SIGNATURE}"
    assert svix.verify([VECTOR_SECRET], vector_headers(mixed), VECTOR_BODY, VECTOR_TS) == VECTOR_ID


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (vector_headers(), VECTOR_BODY + b" "),  # other bytes
        (vector_headers(VECTOR_SIGNATURE.replace("v1,", "v2,")), VECTOR_BODY),
        ({**vector_headers(), "svix-id": "msg_other"}, VECTOR_BODY),
        ({**vector_headers(), "svix-timestamp": str(VECTOR_TS + 1)}, VECTOR_BODY),
        ({"svix-id": VECTOR_ID, "svix-timestamp": str(VECTOR_TS)}, VECTOR_BODY),
    ],
)
def test_svix_refuses_anything_else(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(svix.SignatureError):
        svix.verify([VECTOR_SECRET], headers, body, VECTOR_TS)


def test_svix_timestamps_outside_the_tolerance_are_replays() -> None:
    for skew in (200, -200):
        svix.verify([VECTOR_SECRET], vector_headers(), VECTOR_BODY, VECTOR_TS + skew)
    for skew in (400, -400):
        with pytest.raises(svix.TimestampError):
            svix.verify([VECTOR_SECRET], vector_headers(), VECTOR_BODY, VECTOR_TS + skew)


def incoming(headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> Incoming:
    return Incoming(headers or {}, query or {}, b"{}", 0.0)


def test_basic_and_url_token_verifiers() -> None:
    good = "Basic " + base64.b64encode(b"user:pass").decode()
    assert basic_verify(incoming({"authorization": good}), ["other:x", "user:pass"], 0) is None
    for header in ("", "Basic !!", "Bearer x", "Basic " + base64.b64encode(b"user:pas").decode()):
        with pytest.raises(Rejected):
            basic_verify(incoming({"authorization": header}), ["user:pass"], 0)
    verify = url_token_verify("token")
    assert verify(incoming(query={"token": "t" * 20}), ["t" * 20], 0) is None
    for query in ({}, {"token": ""}, {"token": "t" * 19}):
        with pytest.raises(Rejected):
            verify(incoming(query=query), ["t" * 20], 0)


@pytest.mark.parametrize(
    ("partner", "body", "targets"),
    [
        ("guesty", b'{"event":"reservation.updated","reservation":{"_id":"r1"}}', [("reservations", "r1")]),
        (
            "guesty",
            b'{"event":"reservation.created.v2","reservation":{"_id":"r2"}}',
            [("reservations", "r2")],
        ),
        ("guesty", b'{"event":"listing.removed","listing":{"_id":"l1"}}', [("properties", "l1")]),
        ("guesty", b'{"event":"guest.created","guest":{"_id":"g"}}', []),
        ("hostaway", b'{"event":"reservation.created","data":{"id":123}}', [("reservations", "123")]),
        ("hostaway", b'{"event":"message.received","data":{"id":5}}', []),
        ("cloudbeds", b'{"event":"reservation/deleted","reservationID":"77"}', [("reservations", "77")]),
        ("cloudbeds", b'{"event":"reservation/created","reservationId":78}', [("reservations", "78")]),
        ("cloudbeds", b'{"event":"integration/appstate_changed"}', []),
    ],
)
def test_events_name_their_records(partner: str, body: bytes, targets: list[tuple[str, str]]) -> None:
    scheme = registry.partners()[partner].webhooks
    assert scheme is not None
    assert list(scheme.parse(body).targets) == [Target(*t) for t in targets]


@pytest.mark.parametrize(
    ("partner", "body"),
    [
        ("guesty", b"[]"),
        ("guesty", b'{"event":"reservation.updated"}'),
        ("hostaway", b'{"event":"reservation.updated","data":{"id":true}}'),
        ("hostaway", b'{"event":"reservation.updated","data":{"id":"12a"}}'),
        ("cloudbeds", b'{"event":"reservation/created"}'),
        ("cloudbeds", b"\xff"),
    ],
)
def test_bodies_that_name_nothing_are_bad_requests(partner: str, body: bytes) -> None:
    scheme = registry.partners()[partner].webhooks
    assert scheme is not None
    with pytest.raises(ValueError):
        scheme.parse(body)


def test_configured_secrets_are_checked_without_being_echoed() -> None:
    def document(partner: str, secrets: list[str]) -> dict[str, object]:
        credentials = (
            {"api_key": "cbat_x"} if partner == "cloudbeds" else {"client_id": "1", "client_secret": "s"}
        )
        return {
            "integrations": [
                {"id": "a", "partner": partner, "credentials": credentials, "webhook_secrets": secrets}
            ]
        }

    schemas = registry.schemas()
    settings = parse_settings(document("guesty", [VECTOR_SECRET, "${UNSET:-}"]), {}, schemas)
    assert [s.get_secret_value() for s in settings.integrations[0].webhook_secrets] == [VECTOR_SECRET]
    for partner, secret in (
        ("guesty", "whsec_not base64!"),
        ("hostaway", "no-colon"),
        ("cloudbeds", "short"),
    ):
        with pytest.raises(errors.ConfigError) as caught:
            parse_settings(document(partner, [secret]), {}, schemas)
        assert caught.value.problems[0][0] == "integrations[0].webhook_secrets[0]"
        assert secret not in str(caught.value)
