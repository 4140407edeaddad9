"""The wire under ``PartnerClient``: httpx's own transport (httpcore over h11), per route.

httpx's transport is the default because what a hostile or unusual network needs is
already right in it: h11 bounds a response head (100 KB, so a header flood or an endless
header line is refused, not buffered), anyio connects with happy eyeballs, proxies are
tunnelled with CONNECT, TLS verifies against whatever trust store it is given, header
names and values with line breaks are refused, and IDN hosts are sent IDNA-encoded. A
close-delimited body cut by a reset is an error, not a short success.

What is ours is only what httpx's transport has no setting for: choosing the proxy per
origin by ``no_proxy`` (``syncd.http.egress``) with the environment handed in rather than
read from ``os.environ`` here. Redirects and cookies never happen at this level (those
are ``httpx.AsyncClient`` features), so a partner can neither send us off its host nor
keep a session across integrations.
"""

from __future__ import annotations

import httpx

from syncd.http.egress import Egress

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_KEEPALIVE_S = 15.0
_DEFAULT_PORTS = {"http": 80, "https": 443}


class PartnerTransport(httpx.AsyncBaseTransport):
    """Routes each request to a pool for its proxy (or to the direct pool). A partner has
    one or two origins (API and token endpoint), so routes are decided once per origin."""

    def __init__(
        self,
        egress: Egress | None = None,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
    ) -> None:
        self._egress = egress or Egress()
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_s,
        )
        self._tls = self._egress.ssl_context()
        self._pools: dict[str | None, httpx.AsyncHTTPTransport] = {}
        self._routes: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        pool = self._routes.get(origin)
        if pool is None:
            pool = self._routes[origin] = self._pool(url)
        return await pool.handle_async_request(request)

    def _pool(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        proxy = self._egress.proxy_for(url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme))
        pool = self._pools.get(proxy)
        if pool is None:
            pool = self._pools[proxy] = httpx.AsyncHTTPTransport(
                verify=self._tls,
                proxy=proxy,
                limits=self._limits,
                # The environment was read by the config layer, into ``Egress``.
                trust_env=False,
            )
        return pool

    async def aclose(self) -> None:
        pools, self._pools, self._routes = list(self._pools.values()), {}, {}
        for pool in pools:
            await pool.aclose()


class Transports:
    """The process's partner transports: one per partner, since each partner has its own
    proxy and trust store (and no connection is ever shared across partners' hosts).
    Closed together."""

    def __init__(self, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self._max_connections = max_connections
        self._by_partner: dict[str, PartnerTransport] = {}

    def get(self, partner: str, egress: Egress) -> PartnerTransport:
        found = self._by_partner.get(partner)
        if found is None:
            found = PartnerTransport(egress, max_connections=self._max_connections)
            self._by_partner[partner] = found
        return found

    async def __aenter__(self) -> Transports:
        return self

    async def __aexit__(self, *_: object) -> None:
        transports, self._by_partner = list(self._by_partner.values()), {}
        for transport in transports:
            await transport.aclose()
