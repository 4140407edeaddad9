"""The wire under ``PartnerClient``: httpx's vocabulary over httpcore and h11.

httpcore and h11 do what a hostile or unusual network needs: h11 bounds a response head
(100 KB, so a header flood or an endless header line is refused, not buffered), proxies
are tunnelled with CONNECT, TLS verifies against whatever trust store it is given, header
names and values with line breaks are refused, and a close-delimited body cut by a reset
is an error. httpx's URL model sends IDN hosts IDNA-encoded and refuses control characters.

This module is what ``httpx.AsyncHTTPTransport`` is (a Request handed to an httpcore pool,
its errors mapped to httpx's types), with two things that class has no setting for: the
pools take a network backend (``syncd.http.sockets`` by default, httpcore's own anyio one
on request), and each origin goes to the pool of its proxy, chosen by ``no_proxy``
(``syncd.http.egress``) from an environment handed in, not read from ``os.environ``.
Redirects and cookies never happen at this level (those are ``httpx.AsyncClient``
features), so a partner can neither send us off its host nor keep a session across
integrations.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import Literal, TypeAlias

import httpcore
import httpx

from syncd.http.egress import Egress
from syncd.http.sockets import AsyncioBackend

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_KEEPALIVE_S = 15.0
NetworkBackend = Literal["asyncio", "anyio"]
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Most specific first: the first match is the one raised.
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _httpx_errors():
                await close()


class PartnerTransport(httpx.AsyncBaseTransport):
    """Routes each request to a pool for its proxy (or to the direct pool). A partner has
    one or two origins (API and token endpoint), so routes are decided once per origin."""

    def __init__(
        self,
        egress: Egress | None = None,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        network_backend: NetworkBackend = "asyncio",
    ) -> None:
        self._egress = egress or Egress()
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._backend = AsyncioBackend() if network_backend == "asyncio" else None  # None: httpcore's own
        self._tls = self._egress.ssl_context()
        self._pools: dict[str | None, httpcore.AsyncConnectionPool] = {}
        self._routes: dict[tuple[bytes, bytes, int | None], httpcore.AsyncConnectionPool] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        pool = self._routes.get(origin)
        if pool is None:
            pool = self._routes[origin] = self._pool(url)
        assert isinstance(request.stream, httpx.AsyncByteStream)
        sent = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            answer = await pool.handle_async_request(sent)
        assert isinstance(answer.stream, AsyncIterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def _pool(self, url: httpx.URL) -> httpcore.AsyncConnectionPool:
        proxy = self._egress.proxy_for(url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme))
        pool = self._pools.get(proxy)
        if pool is None:
            pool = self._pools[proxy] = self._new_pool(proxy)
        return pool

    def _new_pool(self, proxy_url: str | None) -> httpcore.AsyncConnectionPool:
        limits = {
            "ssl_context": self._tls,
            "max_connections": self._max_connections,
            "max_keepalive_connections": self._max_connections,
            "keepalive_expiry": self._keepalive_s,
            "network_backend": self._backend,
        }
        if proxy_url is None:
            return httpcore.AsyncConnectionPool(**limits)  # type: ignore[arg-type]
        proxy = httpx.Proxy(proxy_url)  # its credentials become Proxy-Authorization
        return httpcore.AsyncHTTPProxy(
            proxy_url=httpcore.URL(
                scheme=proxy.url.raw_scheme, host=proxy.url.raw_host, port=proxy.url.port, target=b"/"
            ),
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            # An https:// proxy is verified against the same trust store as the partner.
            proxy_ssl_context=self._tls if proxy.url.scheme == "https" else None,
            **limits,  # type: ignore[arg-type]
        )

    async def aclose(self) -> None:
        pools, self._pools, self._routes = list(self._pools.values()), {}, {}
        for pool in pools:
            await pool.aclose()


# (partner, its transport) -> the transport its integrations use: e.g. a recorder
# (syncd.http.recording) around the real one.
TransportWrapper: TypeAlias = Callable[[str, httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


class Transports:
    """The process's partner transports: one per partner, since each partner has its own
    proxy and trust store (and no connection is ever shared across partners' hosts).
    Closed together."""

    def __init__(
        self, max_connections: int = DEFAULT_MAX_CONNECTIONS, *, wrap: TransportWrapper | None = None
    ) -> None:
        self._max_connections = max_connections
        self._wrap = wrap
        self._by_partner: dict[str, httpx.AsyncBaseTransport] = {}

    def get(
        self, partner: str, egress: Egress, network_backend: NetworkBackend = "asyncio"
    ) -> httpx.AsyncBaseTransport:
        found = self._by_partner.get(partner)
        if found is None:
            found = PartnerTransport(
                egress, max_connections=self._max_connections, network_backend=network_backend
            )
            if self._wrap is not None:
                found = self._wrap(partner, found)
            self._by_partner[partner] = found
        return found

    async def __aenter__(self) -> Transports:
        return self

    async def __aexit__(self, *_: object) -> None:
        transports, self._by_partner = list(self._by_partner.values()), {}
        for transport in transports:
            await transport.aclose()
