"""Serve an ASGI app with uvicorn inside the caller's event loop and task group.

Two departures from ``uvicorn.Server.serve`` defaults, both for embedding:
* signals stay with the owner: uvicorn would install its own SIGINT/SIGTERM handlers and
  re-raise the signal on exit, fighting the daemon's drain;
* we bind the socket ourselves, so a busy port is an ``OSError`` here (uvicorn would call
  ``sys.exit(1)``) and port 0 reports the ephemeral port it got.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus

SHUTDOWN_TIMEOUT_S = 5.0


class EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP: asyncio sets TCP_NODELAY only on TCP-protocol sockets; without it small
    # keep-alive responses (/healthz, /metrics) wait ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def serve(
    app: Any, host: str, port: int, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled, then shut down gracefully; reports the bound port once ready."""
    sock = bind(host, port)
    config = uvicorn.Config(
        app, lifespan="off", access_log=False, log_level="warning", http="httptools", log_config=None
    )
    server = EmbeddedServer(config)
    finished = anyio.Event()

    async def run() -> None:
        # Shielded: cancellation of the owner must become a graceful shutdown, not an
        # exception thrown into uvicorn's loop.
        with anyio.CancelScope(shield=True):
            try:
                await server.serve(sockets=[sock])
            finally:
                sock.close()
                finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        # uvicorn exposes start-up only as a flag, so poll it (briefly, once).
        while not server.started and not finished.is_set():  # noqa: ASYNC110
            await anyio.sleep(0.005)
        if finished.is_set():
            raise OSError(f"web server on {host}:{port} stopped during start-up")
        task_status.started(sock.getsockname()[1])
        try:
            await anyio.sleep_forever()
        finally:
            server.should_exit = True
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(SHUTDOWN_TIMEOUT_S):
                    await finished.wait()
                server.force_exit = True
                await finished.wait()
