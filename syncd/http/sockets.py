"""The bytes under httpcore: a network backend on asyncio protocols.

httpcore (with h11) does all of HTTP for the partner wire: the pool, the bounded response
head, framing, proxies and their CONNECT tunnels, TLS upgrades. A network backend only
moves bytes, and httpcore takes one as a documented extension point. Its default reads
through anyio streams: a cancel scope, a lock and an event for every read, and a
readability poll (a syscall) of every pooled connection for every request; on a page of
100 listings that is a quarter of what the daemon spends on the page besides. Here a
protocol buffers what arrives, a read takes what is buffered up to its size, timeouts are
loop timers, and readability is a flag. The socket stops being read past ``HIGH_WATER``
unread bytes, so memory stays bounded whatever a peer sends.

Connecting follows RFC 8305 as anyio does: every address the name resolves to, families
interleaved, each next attempt started when the previous one fails or after
``HAPPY_EYEBALLS_DELAY_S``, the first connection to succeed kept.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Any, cast

import anyio
import httpcore

HAPPY_EYEBALLS_DELAY_S = 0.25
HIGH_WATER = 256 * 1024  # unread bytes before the socket is paused
_TIMED_OUT = object()
AddrInfo = tuple[Any, ...]  # one of getaddrinfo's results


class _Protocol(asyncio.Protocol):
    """What arrived and whether the connection is over; wakes the one reader waiting."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost: BaseException | None = None
        self.reading_paused = False
        self.waiter: asyncio.Future[Any] | None = None
        self.writable: asyncio.Future[Any] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport: an HTTP/1.1 client has nothing to add after the peer's end

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.lost = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def _wait(future: asyncio.Future[Any], timeout: float | None) -> bool:
    """False when ``timeout`` passed first. A loop timer, not a cancel scope: cancelling
    the caller still cancels the wait as usual."""
    if timeout is None:
        await future
        return True

    def expire() -> None:
        if not future.done():
            future.set_result(_TIMED_OUT)

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return await future is not _TIMED_OUT
    finally:
        timer.cancel()


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        sock = transport.get_extra_info("socket")
        self._fd: int = sock.fileno() if sock is not None else -1

    def _readable(self) -> bool:
        """Whether the kernel holds something the loop has not delivered yet: a peer that
        closed an idle connection just before it is reused (one poll, no wait)."""
        if self._fd < 0:
            return False
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        return bool(poller.poll(0))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._protocol
        if not p.buffer and not p.eof:
            p.waiter = asyncio.get_running_loop().create_future()
            try:
                if not await _wait(p.waiter, timeout):
                    raise httpcore.ReadTimeout(f"no data for {timeout} s")
            finally:
                p.waiter = None
        if p.buffer:
            data = bytes(p.buffer[:max_bytes])
            del p.buffer[:max_bytes]
            if p.reading_paused and len(p.buffer) < HIGH_WATER // 2 and not p.eof:
                p.reading_paused = False
                self._transport.resume_reading()
            return data
        if p.lost is not None:  # a reset, not an end: a close-delimited body is cut, not whole
            raise httpcore.ReadError(f"{type(p.lost).__name__}: {p.lost}")
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        p = self._protocol
        if p.lost is not None or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if p.writable is not None and not await _wait(p.writable, timeout):
            raise httpcore.WriteTimeout(f"could not write for {timeout} s")

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            with anyio.fail_after(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake not done in {timeout} s") from exc
        except (OSError, ssl.SSLError) as exc:  # certificate refused, handshake broken
            self._transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # pragma: no cover - asyncio returns None only for a closing loop
            raise httpcore.ConnectError("TLS could not start")
        self._protocol.transport = transport  # pausing and resuming now go through TLS
        return _Stream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # idle and readable: the peer closed it, or sent something unasked
            return bool(self._protocol.buffer) or self._protocol.eof or self._readable()
        name = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername"}.get(info)
        if name is not None:
            return self._transport.get_extra_info(name)
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


def interleaved(infos: Sequence[AddrInfo]) -> list[AddrInfo]:
    """Addresses in the order to try them (RFC 8305 §4): the first family's first address,
    then the other family's, alternating, each family in resolver order."""
    if not infos:
        return []
    first = [i for i in infos if i[0] == infos[0][0]]
    other = [i for i in infos if i[0] != infos[0][0]]
    out: list[AddrInfo] = []
    for n in range(max(len(first), len(other))):
        out.extend(family[n] for family in (first, other) if n < len(family))
    return out


async def connect_first(
    infos: Sequence[AddrInfo],
    *,
    local_address: str | None = None,
    socket_options: Iterable[Any] = (),
    delay_s: float = HAPPY_EYEBALLS_DELAY_S,
) -> socket.socket:
    """The first socket to connect, trying ``infos`` in order, each next one when the
    previous failed or ``delay_s`` passed; the others are closed. OSError if none does."""
    loop = asyncio.get_running_loop()
    options = list(socket_options)
    winner: socket.socket | None = None
    failures: list[OSError] = []

    async def attempt(info: AddrInfo, failed: anyio.Event) -> None:
        nonlocal winner
        family, kind, proto, _, address = info
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            for option in options:
                sock.setsockopt(*option)
            if local_address is not None:
                sock.bind((local_address, 0))
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            failures.append(exc)
            failed.set()
            return
        except BaseException:
            sock.close()
            raise
        if winner is None:
            winner = sock
            tg.cancel_scope.cancel()
        else:
            sock.close()

    async with anyio.create_task_group() as tg:
        for info in infos:
            failed = anyio.Event()
            tg.start_soon(attempt, info, failed)
            with anyio.move_on_after(delay_s):
                await failed.wait()
    if winner is None:
        if len(failures) == 1:
            raise failures[0]
        raise OSError(f"all {len(failures)} addresses failed: " + "; ".join(map(str, failures)))
    return winner


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            with anyio.fail_after(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                sock = await connect_first(
                    interleaved(infos), local_address=local_address, socket_options=socket_options or ()
                )
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    transport, protocol = await loop.create_connection(_Protocol, sock=sock)
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port} took over {timeout} s") from exc
        except OSError as exc:  # refused, unreachable, name not found
            raise httpcore.ConnectError(f"{type(exc).__name__} connecting to {host}:{port}: {exc}") from exc
        return _Stream(transport, protocol)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - partners are reached over TCP
        raise httpcore.UnsupportedProtocol("Unix sockets are not a partner's address")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
