"""The wire under ``PartnerClient``: an httpx transport over a pool of HTTP/1.1 connections.

httpx stays the vocabulary (``Request``, ``Response``, ``Timeout``, the exception types the
client classifies), so tests can hand the client any httpx transport (``MockTransport``).
What carries the bytes is ours, over asyncio protocols with httptools parsing
(``syncd.http.h1``), because every library measured spends more CPU per request than a
sync can afford: on a page of 100 Guesty listings (~140 KB) from the simulator, one GET
and its body cost 630 µs of client CPU through httpx's ``AsyncClient`` (pure-Python h11,
cookies, redirects, auth; 2026-11), 420 µs through httpcore directly, and, measured
interleaved on 2026-12-05, 210 µs through aiohttp's ``ClientSession`` and its C parser
(this module's previous version) against 143 µs here: 0.7 µs less per synced record, of
the ~17 µs the daemon spends on one. The rest is copying the body and the two syscalls.

What a general client does that ``PartnerClient`` does not want is absent on purpose: no
cookies (a partner's session cookie must not leak across integrations), no redirects
(they could leave the partner's host), no proxies from the environment, HTTP/1.1 only.
TLS is verified against certifi's roots, as httpx does.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import anyio
import certifi
import httpx

from syncd import __version__
from syncd.http.h1 import Connection

USER_AGENT = f"syncd/{__version__}"
ACCEPT_ENCODING = "gzip, deflate"  # what httpx's Response decodes
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Methods a server cannot have acted on twice if they are sent again after a kept-alive
# connection turned out closed before any byte of the answer (the token POST is not one).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

Origin = tuple[str, str, int]


@functools.lru_cache(maxsize=512)
def _parsed(url: str) -> tuple[Origin, str, str]:
    """(origin, Host header, request target) of an absolute URL; partners' URLs repeat."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme {parts.scheme!r} in a partner URL")
    host = parts.hostname
    if not host:
        raise httpx.UnsupportedProtocol("a partner URL without a host")
    port = parts.port or _DEFAULT_PORTS[scheme]
    named = f"[{host}]" if ":" in host else host
    host_header = named if port == _DEFAULT_PORTS[scheme] else f"{named}:{port}"
    # Re-quoted: characters a request line cannot carry are escaped, escapes already there kept.
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        target += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
    return (scheme, host, port), host_header, target


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def _quoted(value: str) -> str:
    # Most values (numbers, field names) need no escape; ``quote`` costs ~3 µs even then.
    return value if _PLAIN.fullmatch(value) else quote(value, safe="")


def _query(params: Mapping[str, str | int]) -> str:
    """RFC 3986 form: every reserved character escaped, a space as %20."""
    return "&".join(f"{_quoted(k)}={_quoted(str(v))}" for k, v in params.items())


_DEFAULT_HEADERS = (("User-Agent", USER_AGENT), ("Accept-Encoding", ACCEPT_ENCODING), ("Accept", "*/*"))


def _checked(name: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\0" in value or not name or ":" in name or " " in name:
        raise httpx.LocalProtocolError(f"header {name!r} cannot be sent: a line break or invalid name")
    return value


def _head(method: str, target: str, host: str, headers: list[tuple[str, str]]) -> bytes:
    """The request's head, our defaults added where the caller set no such header."""
    names = {name.lower() for name, _ in headers}
    headers = headers + [(name, value) for name, value in _DEFAULT_HEADERS if name.lower() not in names]
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    lines.extend(f"{name}: {_checked(name, value)}\r\n" for name, value in headers)
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise httpx.LocalProtocolError("a header value is not latin-1 text") from exc


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives. Closing it hands the connection back to the pool
    when the response ended cleanly and both sides keep it alive, and closes it otherwise
    (a body abandoned halfway would leave its rest on the socket)."""

    def __init__(self, pool: WireTransport, origin: Origin, conn: Connection, timeout: float | None) -> None:
        self._pool = pool
        self._origin = origin
        self._conn = conn
        self._timeout = timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            ended = conn.complete  # read first: the end may arrive while the chunk is out
            chunk = conn.take()
            if chunk:
                yield chunk
            if ended:
                return
            await conn.wait(self._timeout)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool._finish(self._origin, self._conn)


class WireTransport(httpx.AsyncBaseTransport):
    """A keep-alive pool: at most ``max_connections`` requests in flight, each host's idle
    connections kept for ``keepalive_s`` (most recently used first)."""

    def __init__(
        self, max_connections: int = 64, keepalive_s: float = 15.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, list[Connection]] = {}
        # Default: certifi's roots, hostname checked. Another context trusts another CA.
        self._tls = tls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        host = next((v for k, v in headers if k.lower() == "host"), url.netloc.decode("ascii"))
        headers = [(k, v) for k, v in headers if k.lower() != "host"]  # _head writes it first
        data = _head(request.method, url.raw_path.decode("ascii"), host, headers) + body
        return await self._send(request.method, origin, data, request.extensions, request)

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: dict[str, Any],
    ) -> httpx.Response:
        """``handle_async_request`` from the request's parts, with no ``httpx.Request``
        built first: httpx parses and validates a URL character by character in Python,
        42 µs for a Guesty page request with its JSON filter (a sixth of the partner
        client's CPU per page). Same wire, same headers, same errors; the response has
        no ``request``."""
        origin, host, target = _parsed(url)
        if params:
            target += ("&" if "?" in target else "?") + _query(params)
        sent = list((headers or {}).items())
        body = b""
        if form is not None:
            body = urlencode(form).encode("ascii")
            if not any(name.lower() == "content-type" for name, _ in sent):
                sent.append(("Content-Type", "application/x-www-form-urlencoded"))
        if body or method in ("POST", "PUT", "PATCH"):
            sent.append(("Content-Length", str(len(body))))
        data = _head(method, target, host, sent) + body
        return await self._send(method, origin, data, extensions, None)

    async def _send(
        self,
        method: str,
        origin: Origin,
        data: bytes,
        extensions: dict[str, Any],
        request: httpx.Request | None,
    ) -> httpx.Response:
        timeouts = extensions.get("timeout") or {}
        read = timeouts.get("read")
        await self._slot(timeouts.get("pool"))
        try:
            conn = await self._answered(method, origin, data, timeouts.get("connect"), read)
        except BaseException:
            self._slots.release()
            raise
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(self, origin, conn, read),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _slot(self, wait_s: float | None) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        try:
            with anyio.fail_after(wait_s):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout(f"no connection free within {wait_s} s") from exc

    async def _answered(
        self, method: str, origin: Origin, data: bytes, connect: float | None, read: float | None
    ) -> Connection:
        """A connection whose response headers have arrived. A kept-alive connection the
        server closed while idle fails before any byte of the answer: an idempotent request
        is then sent once more on a new connection, as browsers and httpx do."""
        while True:
            conn = self._reused(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, connect)
            try:
                conn.start(data, expect_body=method != "HEAD")
                while not conn.headers_done:
                    await conn.wait(read)
                return conn
            except httpx.TransportError:
                conn.close()
                if reused and not conn.received and method in _IDEMPOTENT:
                    continue
                raise
            except BaseException:
                conn.close()
                raise

    def _reused(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive_s:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: Origin, connect_s: float | None) -> Connection:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context(cafile=certifi.where())
            tls = self._tls
        loop = asyncio.get_running_loop()
        try:
            with anyio.fail_after(connect_s):
                _, conn = await loop.create_connection(
                    Connection, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:  # refused, unreachable, name not found, TLS verification
            raise httpx.ConnectError(f"{type(exc).__name__} connecting to {host}:{port}: {exc}") from exc
        return conn

    def _finish(self, origin: Origin, conn: Connection) -> None:
        """The exchange is over (its body read or abandoned): pool or close, free the slot."""
        try:
            if conn.reusable:
                conn.park()
                idle = self._idle.setdefault(origin, [])
                idle.append(conn)
                if len(idle) > self._max_connections:
                    idle.pop(0).close()
            else:
                conn.close()
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
