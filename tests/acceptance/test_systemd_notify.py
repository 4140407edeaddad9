"""Under systemd (Type=notify, WatchdogSec): a real `syncd run` says READY=1 once it
serves, pings the watchdog while healthy, and says STOPPING=1 when SIGTERM drains it."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import anyio
import httpx
import pytest

from syncd.observability.systemd import SystemdNotifier
from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import guesty_config, open_daemon, write_config

pytestmark = pytest.mark.anyio
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")


async def messages(sock: socket.socket, until: str, timeout_s: float) -> list[str]:
    """Datagrams received until one contains ``until`` (each as its text)."""
    got: list[str] = []
    with anyio.fail_after(timeout_s):
        while not any(until in m for m in got):
            try:
                got.append(sock.recv(4096).decode())
            except BlockingIOError:
                await anyio.sleep(0.05)
    return got


async def test_ready_watchdog_and_stopping_reach_systemd(database_url: str, tmp_path: Path) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=5, listings=200))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
        sock.setblocking(False)
        async with SimulatorServer(sim) as server:
            document = guesty_config(server, database_url, [ACCOUNT], state_dir=tmp_path, web=True)
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            document["web"]["port"] = port
            config = write_config(document, tmp_path)
            env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "4000000"}
            proc = await open_daemon(config, env=env)
            try:
                ready = await messages(sock, "READY=1", timeout_s=60)
                assert "STATUS=syncing 1 integration(s) as shard 0/1" in ready[-1]
                assert not any("WATCHDOG=1" in m for m in ready[:-1]), "no ping before READY"
                # Ready means serving: the health endpoint answers at once.
                async with httpx.AsyncClient() as client:
                    health = await client.get(f"http://127.0.0.1:{port}/healthz")
                assert health.status_code == 200
                pings = await messages(sock, "WATCHDOG=1", timeout_s=5)
                assert pings[-1] == "WATCHDOG=1"
                proc.send_signal(signal.SIGTERM)
                stopping = await messages(sock, "STOPPING=1", timeout_s=10)
                assert stopping[-1].startswith("STOPPING=1")
                with anyio.fail_after(30):
                    assert await proc.wait() == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


def test_without_systemd_nothing_is_sent_and_abstract_sockets_work() -> None:
    assert SystemdNotifier.from_environ({}).ready("x") is False
    env = {"NOTIFY_SOCKET": "@syncd-test-notify", "WATCHDOG_USEC": "0"}
    notifier = SystemdNotifier.from_environ(env)
    assert notifier.enabled and notifier.watchdog_s is None  # 0 means no watchdog
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0syncd-test-notify")
        assert notifier.ready("up") is True
        assert sock.recv(100) == b"READY=1\nSTATUS=up"
    # The watchdog is for the process systemd named, not for a child that inherited it.
    other = SystemdNotifier.from_environ({**env, "WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None
    assert SystemdNotifier.from_environ({**env, "WATCHDOG_USEC": "5000000"}).watchdog_s == 5.0
    # A vanished socket is not an error for the daemon.
    assert SystemdNotifier("/nonexistent/notify.sock").watchdog() is False
