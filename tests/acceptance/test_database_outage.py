"""PostgreSQL goes away under a running daemon (RELIABILITY row 3, in small): its sessions
are terminated, then the server restarts. The daemon never exits, reports itself unready
while the database is down, reconnects, and the database converges to the partner's truth."""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from syncd.simulator import limits
from syncd.simulator.profiles.guesty.data import GuestyAccount
from syncd.simulator.server import Simulator, SimulatorServer
from syncd.store.embedded import EmbeddedPostgres
from tests.support import assert_matches_truth, db_rows, guesty_config, open_daemon, poll_until, write_config

pytestmark = pytest.mark.anyio
ACCOUNT = ("acme", "guesty-acct-1", "sim-secret-1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def converged(dsn: str, account: GuestyAccount) -> bool:
    try:
        await assert_matches_truth(dsn, "acme", account)
    except Exception:  # not yet, or the server is restarting
        return False
    return True


def readyz_is(client: httpx.AsyncClient, status: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await client.get("/readyz")).status_code == status

    return check


@pytest.mark.slow
async def test_daemon_survives_terminated_sessions_and_a_server_restart(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "db")
    dsn = await pg.astart()
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    account = sim.add_account("guesty", ACCOUNT[1], ACCOUNT[2], GuestyAccount(seed=9, listings=400))
    port = free_port()
    try:
        async with SimulatorServer(sim) as server:
            document = guesty_config(server, dsn, [ACCOUNT], state_dir=tmp_path, web=True, interval_s=1)
            document["daemon"]["log_level"] = "info"
            document["web"]["port"] = port
            config = write_config(document, tmp_path)
            log_path = tmp_path / "daemon.log"
            log = log_path.open("wb")
            proc = await open_daemon(config, stderr=log)
            try:
                with anyio.fail_after(60):
                    await poll_until(lambda: converged(dsn, account), interval_s=0.5)

                # 1. Every session of the daemon is killed (a failover, an admin, a pooler).
                await db_rows(
                    dsn,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'syncd'",
                )
                account.mutate(40, seed=1)
                with anyio.fail_after(60):
                    await poll_until(lambda: converged(dsn, account), interval_s=0.5)
                assert proc.returncode is None, "the daemon must not exit"

                # 2. The server itself goes down for a few seconds, then comes back.
                await pg.astop()
                account.mutate(40, seed=2)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    with anyio.fail_after(30):
                        await poll_until(readyz_is(client, 503), interval_s=0.2)
                    assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
                    await anyio.sleep(3)
                    assert proc.returncode is None, "the daemon must not exit while the database is down"
                    await pg.astart()
                    with anyio.fail_after(60):
                        await poll_until(lambda: converged(dsn, account), interval_s=0.5)
                    with anyio.fail_after(30):
                        await poll_until(readyz_is(client, 200), interval_s=0.2)
                assert proc.returncode is None
                proc.send_signal(signal.SIGTERM)
                with anyio.fail_after(30):
                    assert await proc.wait() == 0
            except BaseException:
                sys.stderr.write(log_path.read_text()[-6000:])  # the daemon's side of a failure
                raise
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                log.close()
    finally:
        await pg.astop()
