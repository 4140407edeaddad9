"""The HTTP/1.1 wire's own duties (syncd.http.h1, syncd.http.transport), each against a
loopback server scripted to behave as real servers do at the edges: bodies delimited by a
close or by chunks, kept-alive connections closed under us, trickling or stalled bodies, a
bounded pool, bodies larger than what is buffered."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.abc
import anyio.streams.tls
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from syncd.http import h1
from syncd.http.transport import WireTransport

pytestmark = pytest.mark.anyio

Script = Callable[[anyio.abc.SocketStream, int], Awaitable[None]]
TIMEOUTS = {"timeout": {"connect": 2.0, "read": 2.0, "pool": 2.0}}


async def read_head(stream: anyio.abc.ByteStream) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive()
    return head


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server running ``script(stream, n)`` for its n-th connection (from 0);
    yields its base URL and the count of connections accepted so far."""
    accepted = [0]

    async def serve(stream: anyio.abc.SocketStream) -> None:
        n = accepted[0]
        accepted[0] += 1
        async with stream:
            try:
                await script(stream, n)
            except (anyio.BrokenResourceError, anyio.EndOfStream, anyio.ClosedResourceError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield f"http://127.0.0.1:{port}", accepted
        tg.cancel_scope.cancel()


async def fetch(transport: WireTransport, method: str, url: str, **kw: object) -> tuple[int, bytes]:
    response = await transport.exchange(method, url, extensions=TIMEOUTS, **kw)  # type: ignore[arg-type]
    try:
        return response.status_code, await response.aread()
    finally:
        await response.aclose()


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), b"".join(extra)) + body


async def test_a_kept_alive_connection_carries_the_next_request() -> None:
    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        for i in range(3):
            await read_head(stream)
            await stream.send(ok(b"answer %d" % i))

    async with scripted(script) as (base, accepted), WireTransport() as transport:
        answers = [await fetch(transport, "GET", base + "/a") for _ in range(3)]
    assert answers == [(200, b"answer 0"), (200, b"answer 1"), (200, b"answer 2")]
    assert accepted[0] == 1


async def test_a_body_delimited_by_the_close_or_in_chunks_arrives_whole() -> None:
    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        await read_head(stream)
        if n == 0:  # no length: the body ends when the server closes
            await stream.send(b"HTTP/1.1 200 OK\r\n\r\nfirst part, ")
            await anyio.sleep(0.05)
            await stream.send(b"second part")
        else:
            await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await anyio.sleep(0.05)
            await stream.send(b"6\r\n world\r\n0\r\n\r\n")
            await anyio.sleep(1)  # keeps the connection open: the chunks alone end the body

    async with scripted(script) as (base, accepted), WireTransport() as transport:
        assert await fetch(transport, "GET", base + "/close") == (200, b"first part, second part")
        assert await fetch(transport, "GET", base + "/chunks") == (200, b"hello world")
    assert accepted[0] == 2  # the close-delimited connection was not pooled


async def test_a_head_answer_ends_at_its_headers_and_a_second_answer_drops_the_socket() -> None:
    """A HEAD's Content-Length announces a body that never comes; a server that answers one
    request twice has desynchronised the connection. Neither leaves a request waiting, and
    neither connection is used again."""

    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        head = await read_head(stream)
        if head.startswith(b"HEAD"):
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        else:
            await stream.send(ok(b"first") + ok(b"second"))
        await anyio.sleep(5)  # holds the connection open: only the client can end it

    async with scripted(script) as (base, accepted), WireTransport() as transport:
        with anyio.fail_after(2):
            assert await fetch(transport, "HEAD", base + "/a") == (200, b"")
            assert await fetch(transport, "GET", base + "/a") == (200, b"first")
            assert await fetch(transport, "GET", base + "/a") == (200, b"first")
    assert accepted[0] == 3


async def test_a_connection_closed_under_a_request_is_retried_only_for_an_idempotent_one() -> None:
    """The server answers one request per connection and then, without saying so, closes
    on the next one before answering: a GET goes again on a new connection, a POST (a
    token request could count against the partner's cap) fails as the protocol error."""

    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        await read_head(stream)
        await stream.send(ok(b"served"))
        await read_head(stream)  # the next request arrives on the kept-alive connection...
        # ...and the connection closes unanswered

    async with scripted(script) as (base, accepted), WireTransport() as transport:
        assert await fetch(transport, "GET", base + "/a") == (200, b"served")
        assert await fetch(transport, "GET", base + "/a") == (200, b"served")
        assert accepted[0] == 2
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(transport, "POST", base + "/token", form={"grant_type": "client_credentials"})
    assert accepted[0] == 2


async def test_a_trickling_body_is_not_a_timeout_but_a_stalled_one_is() -> None:
    """The read timeout bounds the silence between reads, as httpx's does: a body sent in
    small pieces for longer than the timeout (too small to wake the reader) arrives."""

    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        await read_head(stream)
        pieces = [b"x" * 100] * 8
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % sum(map(len, pieces)))
        for piece in pieces:
            await anyio.sleep(0.1 if n == 0 else 0.6)
            await stream.send(piece)

    timeouts = {"timeout": {"connect": 2.0, "read": 0.3, "pool": 2.0}}
    async with scripted(script) as (base, _), WireTransport() as transport:
        response = await transport.exchange("GET", base + "/slow", extensions=timeouts)
        assert len(await response.aread()) == 800
        await response.aclose()
        response = await transport.exchange("GET", base + "/stalled", extensions=timeouts)
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()
        await response.aclose()


async def test_the_pool_bounds_requests_in_flight_and_a_cancelled_one_frees_its_slot() -> None:
    release = anyio.Event()

    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        while True:
            head = await read_head(stream)
            if b"/held" in head:
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
                await release.wait()
                return
            await stream.send(ok(b"free"))

    timeouts = {"timeout": {"connect": 2.0, "read": 5.0, "pool": 0.2}}
    async with scripted(script) as (base, _), WireTransport(max_connections=1) as transport:
        async with anyio.create_task_group() as tg:
            body_started = anyio.Event()

            async def held() -> None:
                response = await transport.exchange("GET", base + "/held", extensions=timeouts)
                try:
                    body_started.set()
                    await response.aread()
                finally:
                    await response.aclose()

            tg.start_soon(held)
            await body_started.wait()
            with pytest.raises(httpx.PoolTimeout):
                await transport.exchange("GET", base + "/other", extensions=timeouts)
            tg.cancel_scope.cancel()  # the held response, cancelled halfway through its body
        release.set()
        assert await fetch(transport, "GET", base + "/other") == (200, b"free")


async def test_a_body_beyond_the_buffer_pauses_the_socket_and_still_arrives_whole() -> None:
    body = bytes(range(256)) * (3 * h1.HIGH_WATER // 256)

    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        await read_head(stream)
        await stream.send(ok(body))

    async with scripted(script) as (base, _), WireTransport() as transport:
        response = await transport.exchange("GET", base + "/big", extensions=TIMEOUTS)
        received = b""
        async for chunk in response.aiter_raw():
            received += chunk
            await anyio.sleep(0.01)  # a slow reader: the server is made to wait
        await response.aclose()
    assert received == body


async def test_a_header_that_would_split_the_request_is_refused_before_sending() -> None:
    heads: list[bytes] = []

    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        heads.append(await read_head(stream))
        await stream.send(ok(b""))

    async with scripted(script) as (base, _), WireTransport() as transport:
        with pytest.raises(httpx.LocalProtocolError):
            await fetch(transport, "GET", base + "/a", headers={"X-Token": "t\r\nX-Injected: 1"})
        assert await fetch(transport, "GET", base + "/a", params={"q": "a b&c=d", "n": 3}) == (200, b"")
    [head] = heads
    assert head.startswith(b"GET /a?q=a%20b%26c%3Dd&n=3 HTTP/1.1\r\n")
    assert b"X-Injected" not in head


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncd test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_tls_is_verified_against_the_public_roots_unless_told_another_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def script(stream: anyio.abc.SocketStream, n: int) -> None:
        tls = await anyio.streams.tls.TLSStream.wrap(stream, server_side=True, ssl_context=server_tls)
        await read_head(tls)
        await tls.send(ok(b"over tls"))
        await tls.aclose()

    async with scripted(script) as (base, _):
        url = base.replace("http://", "https://") + "/a"
        async with WireTransport() as transport:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await fetch(transport, "GET", url)
        trusting = ssl.create_default_context(cafile=str(cert))
        async with WireTransport(tls=trusting) as transport:
            assert await fetch(transport, "GET", url) == (200, b"over tls")
