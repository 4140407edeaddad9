"""Loopback peers scripted to behave as real (or hostile) servers do at the edges, a
private certificate authority, and a CONNECT proxy: what the transport tests talk to."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.streams.tls
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from syncd.http.transport import NetworkBackend, PartnerTransport

Script = Callable[[anyio.abc.ByteStream, int], Awaitable[None]]
ROOT = Path(__file__).resolve().parents[3]
# The socket layer under httpcore for ``partner_transport``: syncd's by default, httpcore's
# own as the fallback an operator can choose. Tests marked with the ``both_network_backends``
# fixture (conftest.py) run once with each: both must behave alike.
NETWORK_BACKEND: list[NetworkBackend] = ["asyncio"]


def partner_transport(*args: Any, **kwargs: Any) -> PartnerTransport:
    return PartnerTransport(*args, network_backend=NETWORK_BACKEND[0], **kwargs)


@contextmanager
def hostile_partner() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``hostile_server`` in a process of its own: (its base URL, the process, whose stdout
    announces what it was asked for)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.http.hostile_server"], stdout=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line.startswith("port "), line
    try:
        yield f"http://127.0.0.1:{line.split()[1]}", proc
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


_PEER_GONE = (anyio.BrokenResourceError, anyio.EndOfStream, anyio.ClosedResourceError, OSError)


async def read_head(stream: anyio.abc.ByteStream) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive()
    return head


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), b"".join(extra)) + body


@asynccontextmanager
async def scripted(script: Script, tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server running ``script(stream, n)`` for its n-th connection (from 0);
    yields its base URL and the count of connections accepted so far."""
    accepted = [0]

    async def serve(stream: anyio.abc.SocketStream) -> None:
        n = accepted[0]
        accepted[0] += 1
        async with stream:
            try:
                if tls is None:
                    await script(stream, n)
                else:
                    wrapped = await anyio.streams.tls.TLSStream.wrap(
                        stream, server_side=True, ssl_context=tls
                    )
                    await script(wrapped, n)
            except _PEER_GONE:
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", accepted
        tg.cancel_scope.cancel()


@dataclass(frozen=True)
class PrivateCA:
    """A certificate authority of our own and a server certificate it signed for
    127.0.0.1 and localhost: what a partner's sandbox or a TLS-inspecting proxy presents."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_pem, self.key_pem)
        return context


def private_ca(folder: Path) -> PrivateCA:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncd test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = PrivateCA(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    found.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return found


@dataclass
class ConnectProxy:
    """What a loopback CONNECT proxy tunnelled: one ``host:port`` per tunnel."""

    url: str = ""
    tunnels: list[str] = field(default_factory=list)


@asynccontextmanager
async def connect_proxy() -> AsyncIterator[ConnectProxy]:
    """An HTTP proxy that only tunnels (CONNECT), and only to loopback: bytes are piped
    both ways unread, as a corporate egress proxy does for TLS."""
    seen = ConnectProxy()

    async def pipe(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
        try:
            async for chunk in source:
                await sink.send(chunk)
        except _PEER_GONE:
            pass
        finally:
            await sink.aclose()

    async def serve(client: anyio.abc.SocketStream) -> None:
        async with client:
            try:
                head = await read_head(client)
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                host, _, port = target.rpartition(":")
                if method != "CONNECT" or host not in ("127.0.0.1", "localhost"):
                    await client.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                seen.tunnels.append(target)
                upstream = await anyio.connect_tcp(host, int(port))
                await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                async with upstream, anyio.create_task_group() as tg:
                    tg.start_soon(pipe, client, upstream)
                    tg.start_soon(pipe, upstream, client)
            except _PEER_GONE:
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    seen.url = f"http://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield seen
        tg.cancel_scope.cancel()
