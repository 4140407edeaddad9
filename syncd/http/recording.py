"""Partner traffic recorded to a file and replayed offline, at the httpx transport.

A recording ("cassette") is JSON lines, one exchange per line: the request (method, URL,
body) and the response (status, headers, the body's bytes exactly as they came off the
wire, content encoding included). Replaying it runs a connector's whole stack above the
transport (auth, limits, retries, decompression, pagination, adapters) with no server,
so a connector can be tested against traffic recorded once, from the simulator or from
the partner's real API (see the contract tests).

Secrets never reach the file: credential headers are replaced, and credential fields of
form or JSON bodies (``client_secret``, ``refresh_token``, ``access_token`` …) become
placeholders in requests and responses alike. A replayed token response therefore hands
the client a placeholder token, which replay accepts as readily as the real one.

vcrpy records httpx too, but by patching ``httpx.AsyncClient`` globally; a transport is
what our client already composes, needs no patching, and replays the raw (encoded) body,
so the client's own bounded decompression runs on replay exactly as it does live.
"""

from __future__ import annotations

import base64
import zlib
from collections import defaultdict, deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson

PLACEHOLDER = "recorded-secret"
# Bodies beyond this are not recorded (the client's own body cap is far lower in practice).
MAX_RECORDED_BODY = 64 * 1024 * 1024
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"})
SECRET_FIELDS = frozenset(
    {
        "client_secret",
        "refresh_token",
        "access_token",
        "jwt",
        "password",
        "api_key",
        "code",
        "token",
        "secret",
        "key",
    }
)
# Response headers that describe one moment of one connection, not the partner's answer.
_TRANSIENT_HEADERS = frozenset({"date", "connection", "keep-alive", "transfer-encoding"})


class NotRecorded(httpx.TransportError):
    """Replay met a request the recording does not hold: the connector's traffic changed."""


def _redacted_body(body: bytes, content_type: str) -> bytes:
    media = content_type.split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
        if not any(k.lower() in SECRET_FIELDS for k, _ in pairs):
            return body
        return urlencode([(k, PLACEHOLDER if k.lower() in SECRET_FIELDS else v) for k, v in pairs]).encode()
    if media.endswith("json") and body.lstrip()[:1] == b"{":
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if isinstance(document, dict) and any(k.lower() in SECRET_FIELDS for k in document):
            cleaned = {k: PLACEHOLDER if k.lower() in SECRET_FIELDS else v for k, v in document.items()}
            return orjson.dumps(cleaned)
    return body


def _headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [
        (k, PLACEHOLDER if k.lower() in SECRET_HEADERS else v)
        for k, v in headers.multi_items()
        if k.lower() not in _TRANSIENT_HEADERS
    ]


def _stored_response(raw: bytes, headers: httpx.Headers) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and headers as recorded: verbatim, unless the body carries a credential
    (a token response); then decoded, redacted, and stored without its encoding."""
    content_type = headers.get("content-type", "")
    encoding = headers.get("content-encoding", "identity").strip().lower()
    plain = raw
    if encoding in ("gzip", "x-gzip", "deflate") and len(raw) < 1024 * 1024:
        try:
            plain = zlib.decompress(raw, zlib.MAX_WBITS | 32 if encoding != "deflate" else zlib.MAX_WBITS)
        except zlib.error:
            return raw, _headers(headers)
    elif encoding != "identity":
        return raw, _headers(headers)
    redacted = _redacted_body(plain, content_type)
    if redacted is plain:
        return raw, _headers(headers)
    kept = [(k, v) for k, v in _headers(headers) if k.lower() not in ("content-encoding", "content-length")]
    return redacted, kept


def _request_key(method: str, url: str, body: bytes) -> str:
    return f"{method} {url} {body.decode(errors='replace')}"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes every request to ``inner`` and appends the exchange, redacted, to ``path``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, path: Path) -> None:
        self._inner = inner
        self._path = path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = _redacted_body(await request.aread(), request.headers.get("content-type", ""))
        response = await self._inner.handle_async_request(request)
        chunks: list[bytes] = []
        size = 0
        try:
            assert isinstance(response.stream, httpx.AsyncByteStream)
            async for chunk in response.stream:
                size += len(chunk)
                if size > MAX_RECORDED_BODY:
                    raise httpx.RemoteProtocolError(f"response over {MAX_RECORDED_BODY} bytes: not recorded")
                chunks.append(chunk)
        finally:
            await response.aclose()
        raw = b"".join(chunks)
        stored, headers = _stored_response(raw, response.headers)
        line = {
            "method": request.method,
            "url": str(request.url),
            "body": sent.decode(errors="replace"),
            "status": response.status_code,
            "headers": headers,
            "response": base64.b64encode(stored).decode(),
        }
        with self._path.open("ab") as out:
            out.write(orjson.dumps(line) + b"\n")
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(raw),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers each request with the next recorded response for the same method, URL and
    (redacted) body, in recorded order; a request never recorded raises ``NotRecorded``."""

    def __init__(self, path: Path) -> None:
        self._answers: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        for line in path.read_bytes().splitlines():
            if line.strip():
                exchange = orjson.loads(line)
                self._answers[
                    _request_key(exchange["method"], exchange["url"], exchange["body"].encode())
                ].append(exchange)
        self.replayed = 0

    @property
    def unused(self) -> int:
        """Recorded exchanges no request has asked for (yet)."""
        return sum(len(q) for q in self._answers.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = _redacted_body(await request.aread(), request.headers.get("content-type", ""))
        queue = self._answers.get(_request_key(request.method, str(request.url), body))
        if not queue:
            raise NotRecorded(f"no recorded response for {request.method} {request.url}", request=request)
        exchange = queue.popleft()
        self.replayed += 1
        return httpx.Response(
            exchange["status"],
            headers=exchange["headers"],
            stream=httpx.ByteStream(base64.b64decode(exchange["response"])),
        )
