"""Wire-level faults: what a broken network or gateway does to the bytes of an answer.

ASGI alone cannot express "reset the connection" or "close before the body is done"
(uvicorn refuses a body shorter than its ``Content-Length``), so these responses reach
the connection's transport: ``WiredStarlette`` stores uvicorn's own ``send`` in the
scope (one dict store per request), and a fault takes ``send.__self__.transport`` (the
``RequestResponseCycle``'s) when it needs it. Verified with uvicorn 0.54 + httptools on
uvloop and on the stdlib loop:

- RST: ``SO_LINGER`` {on, 0} then ``transport.abort()``: the kernel sends a reset, the
  client sees ``ConnectionResetError`` (``httpx.ReadError``), never a clean short body.
- Truncation: the full ``Content-Length`` goes out with part of the body, then
  ``transport.close()`` (FIN): the client sees ``httpx.RemoteProtocolError``.
- Hang / trickle: sleeps that end early when the client disconnects (uvicorn's
  ``receive`` answers ``http.disconnect``) or when the server stops (``Hangs.cancel_all``).

Each of them marks the request log: ``STATUS_SCOPE_KEY`` = 0 when the client got no
usable answer, so counters keyed by status count what the client really received.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

import anyio
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from syncd.simulator.faults import Hang, Malform, Reset, Trickle, Truncate, WireFault
from syncd.simulator.requestlog import STATUS_SCOPE_KEY

RAW_SEND_KEY = "syncd.simulator.raw_send"
# How long a reset waits after its bytes left, so the client reads them before the RST.
_RST_GRACE_S = 0.02
_FLUSH_POLL_S = 0.001
# Bound on waiting for uvicorn to notice a connection we closed ourselves.
_CLOSE_WAIT_S = 1.0


class WiredStarlette(Starlette):
    """Starlette that leaves the server's own ``send`` in the scope for wire faults."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


class Hangs:
    """The long-running faults in flight, so that stopping the server ends them at once."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()

    def __len__(self) -> int:
        return len(self._scopes)

    @contextmanager
    def hold(self) -> Iterator[anyio.CancelScope]:
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                yield scope
            finally:
                self._scopes.discard(scope)

    def cancel_all(self) -> None:
        for scope in list(self._scopes):
            scope.cancel()


class Transport(Protocol):
    """What a fault needs of a transport (uvloop's do not subclass ``asyncio.Transport``)."""

    def is_closing(self) -> bool: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...
    def get_write_buffer_size(self) -> int: ...


def transport_of(scope: Scope) -> Transport | None:
    """The connection's transport, when the server is uvicorn (None otherwise)."""
    transport = getattr(getattr(scope.get(RAW_SEND_KEY), "__self__", None), "transport", None)
    return cast("Transport", transport) if hasattr(transport, "abort") else None


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _drop(scope: Scope, receive: Receive, *, rst: bool) -> None:
    """Close the connection (RST or FIN) and wait until uvicorn has noticed."""
    transport = transport_of(scope)
    if transport is None:
        # Not uvicorn: an exception after the head makes any server close the connection.
        raise ConnectionAbortedError("simulated connection fault")
    if not transport.is_closing():
        if rst:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
    with anyio.move_on_after(_CLOSE_WAIT_S):
        await _until_disconnect(receive)


async def _flushed(scope: Scope) -> None:
    """Wait until what was sent has left the process (an RST would discard it otherwise)."""
    transport = transport_of(scope)
    if transport is None:
        return
    for _ in range(int(_CLOSE_WAIT_S / _FLUSH_POLL_S)):
        if not transport.get_write_buffer_size() or transport.is_closing():
            break
        await anyio.sleep(_FLUSH_POLL_S)
    await anyio.sleep(_RST_GRACE_S)


class HangResponse(Response):
    """Never answers; drops the connection after ``seconds``, on disconnect or on server stop."""

    def __init__(self, fault: Hang, hangs: Hangs) -> None:
        super().__init__()
        self.fault = fault
        self.hangs = hangs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[STATUS_SCOPE_KEY] = 0
        with self.hangs.hold(), anyio.move_on_after(self.fault.seconds):
            await _until_disconnect(receive)
        await _drop(scope, receive, rst=False)


class ResetResponse(Response):
    """Sends the head and ``fraction`` of ``response``'s body (or nothing), then an RST."""

    def __init__(self, response: Response, fraction: float | None) -> None:
        super().__init__(bytes(response.body), response.status_code)
        self.raw_headers = response.raw_headers
        self.fraction = fraction

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[STATUS_SCOPE_KEY] = 0
        if self.fraction is not None:
            body = bytes(self.body)
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            cut = min(len(body), math.floor(len(body) * self.fraction))
            await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
            await _flushed(scope)
        await _drop(scope, receive, rst=True)


class TruncatedResponse(Response):
    """Promises the full ``Content-Length``, sends ``fraction`` of it, then closes cleanly."""

    def __init__(self, response: Response, fraction: float) -> None:
        super().__init__(bytes(response.body), response.status_code)
        self.raw_headers = response.raw_headers
        self.fraction = fraction

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[STATUS_SCOPE_KEY] = 0
        body = bytes(self.body)
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        # At least one byte short, even of an empty body: the client must see the mismatch.
        cut = max(0, min(len(body) - 1, math.floor(len(body) * self.fraction)))
        await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
        await _drop(scope, receive, rst=False)


class TrickleResponse(Response):
    """The whole body, in ``chunks`` pieces spread over ``seconds``."""

    def __init__(self, response: Response, fault: Trickle, hangs: Hangs) -> None:
        super().__init__(bytes(response.body), response.status_code)
        self.raw_headers = response.raw_headers
        self.fault = fault
        self.hangs = hangs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytes(self.body)
        chunks = max(1, min(self.fault.chunks, len(body)))
        size = math.ceil(len(body) / chunks) if body else 0
        interval = self.fault.seconds / chunks
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        transport = transport_of(scope)
        with self.hangs.hold() as held:
            for k in range(chunks):
                last = k == chunks - 1
                piece = body[k * size :] if last else body[k * size : (k + 1) * size]
                await send({"type": "http.response.body", "body": piece, "more_body": not last})
                if last or (transport is not None and transport.is_closing()):
                    return  # done, or the client left: uvicorn discards the rest anyway
                await anyio.sleep(interval)
        if held.cancelled_caught:  # the server is stopping mid-body
            scope[STATUS_SCOPE_KEY] = 0
            await _drop(scope, receive, rst=False)


def malformed(response: Response, fraction: float) -> Response:
    """The body cut inside its JSON (never at either end), with a matching Content-Length."""
    body = bytes(response.body)
    cut = min(max(1, math.floor(len(body) * fraction)), max(1, len(body) - 1))
    response.body = body[:cut]
    response.headers["content-length"] = str(len(response.body))
    return response


def instead(wire: WireFault, hangs: Hangs) -> Response | None:
    """The answer that replaces serving, for the wire faults that need no real answer."""
    if isinstance(wire, Hang):
        return HangResponse(wire, hangs)
    if isinstance(wire, Reset) and wire.fraction is None:
        return ResetResponse(Response(), None)
    return None


def damage(response: Response, wire: WireFault, hangs: Hangs) -> Response:
    """``response`` as the broken network delivers it."""
    if isinstance(wire, Reset):
        return ResetResponse(response, wire.fraction)
    if isinstance(wire, Truncate):
        return TruncatedResponse(response, wire.fraction)
    if isinstance(wire, Malform):
        return malformed(response, wire.fraction)
    if isinstance(wire, Trickle):
        return TrickleResponse(response, wire, hangs)
    return response
