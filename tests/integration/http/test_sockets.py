"""The network backend under httpcore (``syncd.http.sockets``): connecting as RFC 8305
says, and a peer that sends faster than we read held to a bounded buffer."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import anyio.abc
import httpcore
import pytest

from syncd.http import sockets
from tests.integration.http.scripted import read_head, scripted

pytestmark = pytest.mark.anyio
V4, V6 = socket.AF_INET, socket.AF_INET6


def info(family: int, address: tuple[str, int]) -> sockets.AddrInfo:
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)


def test_addresses_are_tried_families_interleaved_in_resolver_order() -> None:
    resolved = [info(V6, ("::1", 1)), info(V6, ("::2", 1)), info(V6, ("::3", 1)), info(V4, ("10.0.0.1", 1))]
    assert [i[4][0] for i in sockets.interleaved(resolved)] == ["::1", "10.0.0.1", "::2", "::3"]
    assert sockets.interleaved([]) == []


@contextmanager
def black_hole() -> Iterator[tuple[str, int]]:
    """A loopback address and port whose connection attempts are never answered: a
    listener that never accepts, its backlog full, so the kernel drops new SYNs."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    try:
        yield address
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_black_holed_first_address_costs_the_happy_eyeballs_delay_not_the_timeout() -> None:
    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        await anyio.sleep(5)

    async with scripted(script) as (base, accepted):
        port = int(base.rsplit(":", 1)[1])
        with black_hole() as (hole, hole_port):
            started = time.monotonic()
            with anyio.fail_after(5):
                sock = await sockets.connect_first(
                    [info(V4, (hole, hole_port)), info(V4, ("127.0.0.1", port))], delay_s=0.25
                )
            elapsed = time.monotonic() - started
        with sock:
            assert sock.getpeername() == ("127.0.0.1", port)
    assert 0.2 <= elapsed < 2.0  # the second attempt started after the delay, not after a timeout
    assert accepted[0] == 1


async def test_a_refused_address_hands_over_at_once_and_all_refused_is_one_error() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = closed.getsockname()
    closed.close()  # nothing listens there now: connecting is refused at once

    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        await anyio.sleep(5)

    async with scripted(script) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        started = time.monotonic()
        sock = await sockets.connect_first([info(V4, refused), info(V4, ("127.0.0.1", port))], delay_s=2.0)
        sock.close()
        assert time.monotonic() - started < 1.0  # did not wait out the 2 s delay
    with pytest.raises(OSError, match=r"all 2 addresses failed"):
        await sockets.connect_first([info(V4, refused), info(V4, refused)], delay_s=2.0)


async def test_a_peer_sending_faster_than_we_read_is_held_to_the_high_water_mark() -> None:
    """10 MB sent at once, read 64 KB at a time with pauses: the unread buffer never holds
    much more than ``HIGH_WATER`` (the socket is paused, and the peer waits in the kernel),
    and every byte arrives in order."""
    body = bytes(range(256)) * (10 * 1024 * 1024 // 256)

    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        await read_head(stream)
        await stream.send(body)

    async with scripted(script) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        stream = await sockets.AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=2)
        received = bytearray()
        largest_buffer = 0
        while len(received) < len(body):
            await anyio.sleep(0.001)
            largest_buffer = max(largest_buffer, len(stream._protocol.buffer))  # type: ignore[attr-defined]
            received += await stream.read(65536, timeout=2)
        await stream.aclose()
    assert received == body
    assert largest_buffer <= sockets.HIGH_WATER + 512 * 1024  # one read's worth past the mark


async def test_reads_time_out_on_silence_and_a_reset_is_an_error_not_an_end() -> None:
    async def script(stream: anyio.abc.ByteStream, n: int) -> None:
        await read_head(stream)
        await stream.send(b"partial")
        await anyio.sleep(0.6)
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        await stream.aclose()  # with a zero linger: a reset

    async with scripted(script) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        stream = await sockets.AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
        await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=2)
        assert await stream.read(100, timeout=2) == b"partial"
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(100, timeout=0.2)
        with pytest.raises(httpcore.ReadError, match="Reset"):
            await stream.read(100, timeout=2)
        await stream.aclose()


async def test_nothing_listening_is_a_connect_error_and_an_unanswered_connect_a_timeout() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(httpcore.ConnectError, match=r"127\.0\.0\.1"):
        await sockets.AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)
    with black_hole() as (hole, hole_port), pytest.raises(httpcore.ConnectTimeout):
        await sockets.AsyncioBackend().connect_tcp(hole, hole_port, timeout=0.3)
