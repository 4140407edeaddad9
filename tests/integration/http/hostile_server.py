"""A partner gone hostile, in a process of its own (so its memory is not the client's):
each path answers in one of the ways that took the daemon down or held it before.

    python -m tests.integration.http.hostile_server     # prints "port <n>", serves until killed

Paths: ``/header-flood`` (~9 MB of tiny headers), ``/long-header`` (one 64 MB header
line), ``/stacked`` (``Content-Encoding: gzip, gzip``), ``/reset`` (a close-delimited body
cut by a TCP reset), ``/bomb`` (gzip of 1 GiB of zeros, compressed as it is sent),
``/trickle`` (a 100-byte body, one byte every 0.2 s). For a whole daemon: the token
endpoint answers any POST, and ``/v1/listings`` is the bomb.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import sys
import zlib

GIB = 1 << 30
_STACKED = gzip.compress(gzip.compress(bytes(64 << 20), 9), 9)
_TOKEN = (
    b'{"access_token": "hostile-token", "token_type": "Bearer", "expires_in": 86400, "scope": "open-api"}'
)


def _head(*lines: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


async def _bomb(writer: asyncio.StreamWriter) -> None:
    writer.write(_head(b"Content-Type: application/json", b"Content-Encoding: gzip", b"Connection: close"))
    packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    for _ in range(GIB // len(block)):
        out = packer.compress(block)
        if out:
            writer.write(out)
            await writer.drain()
    writer.write(packer.flush())
    await writer.drain()


async def _answer(path: str, writer: asyncio.StreamWriter) -> bool:
    """Answers one request; False when the connection must end."""
    if path == "/header-flood":
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(150):
            writer.write(b"a: b\r\n" * 10_000)
            await writer.drain()
        writer.write(b"Content-Length: 2\r\n\r\n{}")
    elif path == "/long-header":
        writer.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
        for _ in range(64):
            writer.write(b"a" * (1 << 20))
            await writer.drain()
        writer.write(b"\r\nContent-Length: 2\r\n\r\n{}")
    elif path == "/stacked":
        writer.write(_head(b"Content-Encoding: gzip, gzip", b"Content-Length: %d" % len(_STACKED)) + _STACKED)
    elif path == "/reset":
        writer.write(
            _head(b"Content-Type: application/json", b"Connection: close") + b'{"results": [{"_id": "a'
        )
        await writer.drain()
        await asyncio.sleep(0.1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False
    elif path in ("/bomb", "/v1/listings"):
        if path == "/v1/listings":
            # Announced, then a pause: the test reads the daemon's idle RSS meanwhile.
            sys.stdout.write("listings requested\n")
            sys.stdout.flush()
            await asyncio.sleep(0.5)
        await _bomb(writer)
        return False
    elif path == "/trickle":
        writer.write(_head(b"Content-Length: 100"))
        for _ in range(100):
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b" ")
    elif path.endswith("/token"):
        writer.write(_head(b"Content-Type: application/json", b"Content-Length: %d" % len(_TOKEN)) + _TOKEN)
    else:
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    return True


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if not await _answer(head.split(b" ", 2)[1].decode().split("?")[0], writer):
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.transport.abort()


async def main() -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    sys.stdout.write(f"port {server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
