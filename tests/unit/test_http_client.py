"""PartnerClient over httpx.MockTransport: classification, retries, host pinning, body caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from syncd import errors
from syncd.http.classify import PartnerRules, classify, parse_retry_after
from syncd.http.client import ClientOptions, PartnerClient, backoff_delay
from syncd.http.throttle import Throttle
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics

pytestmark = pytest.mark.anyio
BASE = "https://api.partner.test/v1"


class Recorder:
    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]


def client(handler: Recorder, **options: object) -> tuple[PartnerClient, Metrics]:
    metrics = Metrics()
    opts = ClientOptions(
        partner="p", integration_id="i", base_url=BASE, backoff_initial_s=0.001, backoff_max_s=0.002,
        **options,  # type: ignore[arg-type]
    )  # fmt: skip
    transport = httpx.MockTransport(handler)
    client = PartnerClient(transport, opts, throttle=Throttle(), metrics=metrics, log=get_logger())
    return client, metrics


def calls(metrics: Metrics, status: str) -> float:
    return float(metrics.api_calls.labels("p", "/things", status)._value.get())


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None), (400, errors.PartnerRejected), (401, errors.AuthFailed), (403, errors.PartnerRejected),
        (404, errors.PartnerRejected), (422, errors.PartnerRejected), (429, errors.RateLimited),
        (500, errors.PartnerUnavailable), (502, errors.PartnerUnavailable), (503, errors.PartnerUnavailable),
        (504, errors.PartnerUnavailable), (301, errors.PartnerRejected),
    ],
)  # fmt: skip
def test_classification_by_status(status: int, expected: type[errors.PartnerError] | None) -> None:
    found = classify(status, {}, None, PartnerRules())
    assert (type(found) if found else None) is expected


def test_partner_rules_cover_403_auth_and_errors_hidden_in_200() -> None:
    def success_false(status: int, body: object) -> errors.PartnerError | None:
        if isinstance(body, dict) and body.get("success") is False:
            return errors.PartnerRejected(str(body.get("message")), status=status)
        return None

    rules = PartnerRules(auth_statuses=frozenset({401, 403}), body_error=success_false)
    assert isinstance(classify(403, {}, None, rules), errors.AuthFailed)
    assert isinstance(classify(200, {}, {"success": False, "message": "nope"}, rules), errors.PartnerRejected)
    assert classify(200, {}, {"success": True}, rules) is None


def test_retry_after_in_seconds_and_http_date_never_negative() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2025 00:00:30 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None


def test_backoff_honours_retry_after_and_caps_full_jitter() -> None:
    limited = errors.RateLimited(retry_after=12.0)
    assert 12.0 <= backoff_delay(3, limited, 0.5, 30, 0.99) <= 13.2
    assert backoff_delay(1, None, 0.5, 30, 0.999) <= 0.5
    assert backoff_delay(10, None, 0.5, 30, 0.999) <= 30
    assert backoff_delay(10, None, 0.5, 30, 0.0) == 0.0


async def test_transient_errors_are_retried_then_succeed() -> None:
    handler = Recorder(httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": 1}))
    c, metrics = client(handler)
    assert await c.get("/things", decode=orjson.loads) == {"ok": 1}
    assert len(handler.requests) == 3
    assert calls(metrics, "503") == 1 and calls(metrics, "502") == 1 and calls(metrics, "200") == 1


async def test_client_errors_are_never_retried() -> None:
    handler = Recorder(httpx.Response(422, json={"message": "bad filter"}))
    c, _ = client(handler)
    with pytest.raises(errors.PartnerRejected, match="bad filter"):
        await c.get("/things", decode=orjson.loads)
    assert len(handler.requests) == 1


async def test_attempts_are_bounded() -> None:
    handler = Recorder(httpx.Response(500))
    c, _ = client(handler, max_attempts=3)
    with pytest.raises(errors.PartnerUnavailable):
        await c.get("/things", decode=orjson.loads)
    assert len(handler.requests) == 3


async def test_truncated_json_is_a_transient_failure() -> None:
    handler = Recorder(
        httpx.Response(200, content=b'{"results": [1, 2'), httpx.Response(200, json={"results": []})
    )
    c, _ = client(handler)
    assert await c.get("/things", decode=orjson.loads) == {"results": []}
    assert len(handler.requests) == 2


async def test_429_waits_for_retry_after_before_the_next_attempt() -> None:
    handler = Recorder(httpx.Response(429, headers={"Retry-After": "0.2"}), httpx.Response(200, json=[]))
    c, _ = client(handler)
    started = datetime.now(UTC)
    await c.get("/things", decode=orjson.loads)
    assert datetime.now(UTC) - started >= timedelta(seconds=0.2)


async def test_requests_never_leave_the_partner_host() -> None:
    handler = Recorder(httpx.Response(302, headers={"Location": "https://evil.test/steal"}))
    c, _ = client(handler)
    with pytest.raises(errors.OffHostRequest):
        await c.get("/next", "https://evil.test/v1/things", decode=orjson.loads)
    with pytest.raises(errors.PartnerRejected, match="redirect"):
        await c.get("/things", decode=orjson.loads)  # redirects are not followed
    assert [r.url.host for r in handler.requests] == ["api.partner.test"]


async def test_oversized_bodies_are_refused_not_buffered() -> None:
    handler = Recorder(httpx.Response(200, content=b"[" + b"1," * 4000 + b"1]"))
    c, _ = client(handler, max_body_bytes=1024)
    with pytest.raises(errors.PartnerRejected, match="cap"):
        await c.get("/things", decode=orjson.loads)


async def test_404_is_absence_when_asked() -> None:
    handler = Recorder(httpx.Response(404))
    c, _ = client(handler)
    assert await c.get_or_none("/things/{id}", "/things/x", decode=orjson.loads) is None


async def test_an_idn_host_is_sent_idna_encoded() -> None:
    handler = Recorder(httpx.Response(200, json={}))
    metrics = Metrics()
    opts = ClientOptions(partner="p", integration_id="i", base_url="https://bücher.partner.test/v1")
    idn = PartnerClient(
        httpx.MockTransport(handler), opts, throttle=Throttle(), metrics=metrics, log=get_logger()
    )
    await idn.get("/things", decode=orjson.loads)
    [sent] = handler.requests
    assert sent.url.raw_host == b"xn--bcher-kva.partner.test"
    assert sent.headers["host"] == "xn--bcher-kva.partner.test"
