"""A partner package as a third party would write one, outside ``syncd.connectors``, and the
loopback partner it talks to: what the wiring tests (and the entry-point test) load.

Its quirks are the ones real partners document: a token refused with 403, a token not
valid until a moment after issue, errors under HTTP 200 (``{"success": false}``), and two
ways in (an API key, or OAuth client + refresh token).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio.abc
import orjson

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors.base import Connector, Normalizer, Page, PartnerInfo
from syncd.connectors.wiring import Wiring
from syncd.http.client import PartnerClient
from syncd.store.types import RawRecord
from tests.integration.http.scripted import scripted

TOKEN_ENDPOINT = "/token"


def success_false(status: int, body: Any) -> errors.PartnerError | None:
    """HTTP 200 ``{"success": false, "message": ...}``: an auth error when the message is
    about the token, else the partner refusing the request."""
    if status != 200 or not isinstance(body, dict) or body.get("success") is not False:
        return None
    message = str(body.get("message", ""))
    if "token" in message.lower():
        return errors.AuthFailed(message, status=status)
    return errors.PartnerRejected(message, status=status)


def connect(wiring: Wiring) -> Connector:
    """The auth scheme follows the configured credential set."""
    if "api_key" in wiring.credentials:
        wiring.client.auth = wiring.api_key("x-api-key")
    elif "refresh_token" in wiring.credentials:
        wiring.client.auth = wiring.refresh_token_grant(endpoint=TOKEN_ENDPOINT)
    else:
        wiring.client.auth = wiring.client_credentials(endpoint=TOKEN_ENDPOINT, scope="general")
    return Probe(wiring.info, wiring.client)


PARTNER = PartnerInfo(
    name="acme",
    base_url="https://api.acme.invalid/v1",
    token_url="https://api.acme.invalid/v1/token",
    rate_limits=(),
    max_concurrency=4,
    page_size=10,
    resources=frozenset({"properties"}),
    credential_keys=frozenset({"api_key"}),
    other_credential_sets=(
        frozenset({"client_id", "client_secret", "refresh_token"}),
        frozenset({"client_id", "client_secret"}),
    ),
    auth_statuses=frozenset({401, 403}),
    classify_body=success_false,
    connect=connect,
)


@dataclass
class Probe:
    """A driver that only checks access: the wiring is what is under test."""

    info: PartnerInfo
    client: PartnerClient

    async def check_access(self) -> None:
        await self.client.get("/items", decode=orjson.loads)

    def stream(
        self, resource: str, checkpoint: dict[str, Any] | None, settings: ResourceSettings
    ) -> AsyncGenerator[Page, None]:
        raise NotImplementedError

    def normalizer(self, resource: str) -> Normalizer:
        raise NotImplementedError

    def external_id(self, resource: str, raw: RawRecord) -> str | None:
        return None

    def live_ids(self, resource: str) -> AsyncGenerator[list[str], None] | None:
        return None

    async def fetch_one(self, resource: str, external_id: str) -> bytes | None:
        return None

    async def rotate_secret(self, new_secret: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    at: datetime  # wall clock, when the request had arrived in full


# (the request, the tokens issued so far) -> (status, JSON body)
Handler = Callable[[Seen, list[str]], Awaitable[tuple[int, Any]]]


@dataclass
class AcmeServer:
    """Issues ``t1``, ``t2``, ... from ``POST /token``; ``items`` answers everything else."""

    items: Handler
    seen: list[Seen] = field(default_factory=list)
    issued: list[tuple[str, datetime]] = field(default_factory=list)  # token, when sent

    async def answer(self, request: Seen) -> tuple[int, Any]:
        self.seen.append(request)
        if request.method == "POST" and request.path.endswith(TOKEN_ENDPOINT):
            token = f"t{len(self.issued) + 1}"
            self.issued.append((token, datetime.now(UTC)))
            return 200, {"access_token": token, "expires_in": 3600, "refresh_token": f"r{len(self.issued)}"}
        return await self.items(request, [t for t, _ in self.issued])

    def api_calls(self) -> list[Seen]:
        return [s for s in self.seen if not s.path.endswith(TOKEN_ENDPOINT)]


@asynccontextmanager
async def acme_server(items: Handler) -> AsyncIterator[tuple[str, AcmeServer]]:
    """The loopback partner (HTTP/1.1, keep-alive); yields its base URL and its state."""
    server = AcmeServer(items)

    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                buffer += await stream.receive()
            head, _, rest = buffer.partition(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                rest += await stream.receive()
            body, buffer = rest[:length], rest[length:]
            form = dict(parse_qsl(body.decode())) if body else {}
            status, payload = await server.answer(
                Seen(method, target.split("?")[0], headers, form, datetime.now(UTC))
            )
            encoded = orjson.dumps(payload)
            await stream.send(
                b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % (status, len(encoded))
                + encoded
            )

    async with scripted(script) as (url, _):
        yield url, server
