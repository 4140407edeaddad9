"""One HTTP/1.1 client connection: a request written, its response parsed by httptools.

httptools is llhttp (the parser of Node.js and of aiohttp) behind callbacks; this module
is only the state a keep-alive connection needs around it: where the response is, what
the caller waits for, and whether the socket may carry another request. Errors are
httpx's types, so the partner client classifies a failure the same way whichever
transport raised it. The pool and the request's bytes are ``syncd.http.transport``'s.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

import httptools
import httpx

# Body bytes buffered before the socket stops being read (a 100-listing page is ~140 KB):
# a caller reading slowly, or not at all before it gives up, holds at most this much.
HIGH_WATER = 1 << 20
# Body bytes that wake a waiting reader before the response ends: a page arrives in a few
# reads, and waking the reader for each one cost a pass of the event loop per read.
WAKE_AT = 256 << 10


class Connection(asyncio.Protocol):
    """Carries one request at a time. ``start`` begins an exchange; ``wait`` sleeps until
    the parser has news (headers, body bytes, the end) or the read timeout passes."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._reads = 0  # of this exchange's response
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self.headers_done = False
        self.complete = False
        # The body ends when the server closes: no Content-Length and not chunked.
        self._until_eof = False
        self._length_known = False
        self.error: httpx.TransportError | None = None
        self._keep_alive = False
        self._expect_body = True
        self.closed = False
        self.idle_since = 0.0

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.complete:
            # Bytes nobody asked for (between exchanges): the stream cannot be trusted.
            self._fail(httpx.RemoteProtocolError("the server sent bytes outside a response"))
            self.close()
            return
        self._reads += 1
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
            self.close()
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        self._ended()
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended()
        if not self.complete:
            if exc is None:
                self._fail(httpx.RemoteProtocolError("the server closed the connection mid-response"))
            else:
                self._fail(httpx.ReadError(f"{type(exc).__name__}: {exc}"))
        self._wake()

    def _ended(self) -> None:
        if self._parser is not None and self.headers_done and self._until_eof and not self.complete:
            self.complete = True  # a body delimited by the close: the close is its end
            self._wake()

    # --- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # A second response to one request: raising stops the parser here (feed_data
            # raises), so the response already complete is kept and this socket dropped.
            raise httpx.RemoteProtocolError("the server sent more than one response")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self._length_known = True

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        status = self._parser.get_status_code()
        if status < 200:
            return  # informational (100 Continue): the real response follows
        self.status = status
        self.headers_done = True
        self._until_eof = not self._length_known and status not in (204, 304)
        if not self._expect_body:
            # A HEAD's answer: its Content-Length is the GET's, with no body to follow.
            # llhttp cannot be told, so the response ends here and the socket is not reused.
            self.complete = True
            self._keep_alive = self._until_eof = False
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        if self._buffered >= WAKE_AT:
            self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:  # the end of an informational response
            self.headers.clear()
            self._length_known = False
            return
        assert self._parser is not None
        # Read now: once feed_data returns, llhttp has reset for the next message.
        self._keep_alive = self._parser.should_keep_alive()
        self.complete = True
        self._wake()

    # --- the exchange -------------------------------------------------------------------

    def start(self, request: bytes, expect_body: bool = True) -> None:
        """Write a request; the previous exchange must have completed (or none ran)."""
        self._parser = httptools.HttpResponseParser(self)
        self._expect_body = expect_body
        self.status = 0
        self.headers = []
        self.chunks = []
        self._buffered = 0
        self.headers_done = self.complete = self._until_eof = self._length_known = False
        self.error = None
        self._keep_alive = False
        self._reads = 0
        if self._transport is None or self._transport.is_closing():
            self.closed = True
            self.error = httpx.RemoteProtocolError("the connection closed before the request was sent")
            return
        self._transport.write(request)

    def take(self) -> bytes:
        """The body bytes received since the last call, as one ``bytes`` (so the caller's own
        join of a body that arrived whole copies nothing); reading resumes if it had paused."""
        chunks, self.chunks = self.chunks, []
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def wait(self, silence_s: float | None) -> None:
        """Until the parser reports progress. A connection that times out is closed: its
        response may still arrive, and the next request must not read it.

        The deadline is a timer on the loop, not a cancel scope: this runs for every
        response, and a scope costs several times a timer handle (the partner client's own
        deadlines, around the whole request, are cancel scopes). Like httpx's read timeout
        it bounds the silence between two reads, not the whole wait."""
        if self.chunks or self.complete:
            return  # arrived while the reader was busy (perhaps pausing the socket)
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        if silence_s is not None:
            self._timer = loop.call_later(silence_s, self._timed_out, silence_s, self._reads)
        try:
            await waiter
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self.error is not None and not (self.chunks or self.complete):
            raise self.error

    def _timed_out(self, silence_s: float, reads: int) -> None:
        if self._reads != reads:  # bytes arrived meanwhile, not enough to wake the reader
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(silence_s, self._timed_out, silence_s, self._reads)
            return
        self._timer = None
        self._fail(httpx.ReadTimeout("read timed out"))
        self.close()

    def _fail(self, exc: httpx.TransportError) -> None:
        if self.error is None and not self.complete:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def received(self) -> bool:
        """Whether any byte of this exchange's response has arrived."""
        return self._reads > 0

    @property
    def reusable(self) -> bool:
        """Complete, kept alive by both sides, and nothing pending on the socket."""
        return (
            self.complete
            and self.error is None
            and not self.closed
            and self._keep_alive
            and self._transport is not None
            and not self._transport.is_closing()
        )

    def park(self) -> None:
        """Between exchanges: remember since when, so the pool can expire it."""
        self._parser = None
        self.chunks = []
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
