"""The wire under ``PartnerClient``: an httpx transport that sends through aiohttp.

Why not ``httpx.AsyncClient`` over its own transport: measured on a page of 100 Guesty
listings (~140 KB) from the simulator, one GET costs 630 µs of client CPU through
``AsyncClient`` (its pure-Python h11 stack, cookie jar, redirect and auth machinery),
420 µs calling httpcore's transport directly, and 180 µs through this transport, whose
HTTP parser is aiohttp's C one (llhttp). At 100 records a page that is 4.5 µs per synced
record, a tenth of a full sync's CPU. httpx stays the vocabulary (``Request``,
``Response``, ``Timeout``, the exception types the client classifies), so tests can hand
the client any httpx transport (``MockTransport``).

Why not the ``httpx-aiohttp`` package: it maps aiohttp's connection errors to
``ConnectTimeout`` (a refused connection and a server cutting a response would both read
as a timeout in our metrics) and builds a ``ClientTimeout`` per request. The mapping here
keeps httpx's meanings, which the client's error classes and the status labels follow.

What ``AsyncClient`` did that ``PartnerClient`` does not want is dropped on purpose:
no cookies (a partner's session cookie must not leak across integrations), no redirects
(they could leave the partner's host), no proxies from the environment.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
import certifi
import httpx
from multidict import CIMultiDict

from syncd import __version__

USER_AGENT = f"syncd/{__version__}"
ACCEPT_ENCODING = "gzip, deflate"


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    """aiohttp's exceptions as httpx's: what failed (connect, read, protocol) is kept."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timed out") from exc
    except (aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError, TimeoutError) as exc:
        raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc)) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
        # Closed before a response or before the body's declared end (aiohttp reports a
        # reset mid-body as the short body, not the socket error), or bytes that are not
        # HTTP: httpx's protocol errors. The partner client counts all as transport errors.
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:
        # Connected, then the socket failed (a reset while sending or reading).
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
    except aiohttp.ClientError as exc:
        raise httpx.NetworkError(str(exc) or type(exc).__name__) from exc


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives (``iter_any``: no re-chunking copy)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body read to the end returns the connection to the pool; one abandoned halfway
        # (size cap, cancellation) would leave unread bytes on it, so it is closed instead.
        if self._response.content.is_eof():
            self._response.release()
        else:
            self._response.close()


def _as_response(response: aiohttp.ClientResponse, request: httpx.Request | None) -> httpx.Response:
    return httpx.Response(
        response.status,
        headers=response.raw_headers,
        stream=_Body(response),
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
    )


class AiohttpTransport(httpx.AsyncBaseTransport):
    """A bounded keep-alive pool; TLS verified against certifi's roots, as httpx does."""

    def __init__(self, max_connections: int = 64, keepalive_s: float = 15.0) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: aiohttp binds the session to the running event loop.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=self._keepalive_s,
            ssl=ssl.create_default_context(cafile=certifi.where()),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # httpx's Response decodes, so size caps see real bytes
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    def _timeout(self, extensions: dict[str, Any]) -> aiohttp.ClientTimeout:
        """httpx's per-request timeouts in aiohttp's terms (cached: a handful of distinct
        values per process). httpx's pool timeout bounds the wait for a connection, which
        aiohttp's ``connect`` also spends establishing one."""
        t = extensions.get("timeout") or {}
        key = (t.get("connect"), t.get("read"), t.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            connect, read, pool = key
            acquire = None if pool is None or connect is None else pool + connect
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=acquire, sock_connect=connect, sock_read=read
            )
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = CIMultiDict(request.headers.multi_items())
        body = await request.aread()
        response = await self._request(
            request.method, str(request.url), headers, None, body or None, request.extensions
        )
        return _as_response(response, request)

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
        client's CPU per page), where yarl, under aiohttp, encodes the query in C. Same
        wire, same headers, same errors; the response has no ``request``."""
        response = await self._request(method, url, CIMultiDict(headers or {}), params, form, extensions)
        return _as_response(response, None)

    async def _request(
        self,
        method: str,
        url: str,
        headers: CIMultiDict[str],
        params: Mapping[str, str | int] | None,
        data: bytes | Mapping[str, str] | None,
        extensions: dict[str, Any],
    ) -> aiohttp.ClientResponse:
        session = self._session or self._open()
        headers.setdefault("User-Agent", USER_AGENT)
        # Only what httpx's Response can decode (aiohttp would also offer what *it* can).
        headers.setdefault("Accept-Encoding", ACCEPT_ENCODING)
        with _as_httpx():
            return await session.request(
                method,
                url,
                params=params,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=self._timeout(extensions),
            )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
