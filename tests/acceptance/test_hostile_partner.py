"""A real ``syncd run --once`` against a partner whose listings page is a gzip bomb (1 GiB
of zeros): the page is refused at ``max_body_bytes`` and the daemon's peak RSS stays
within twice that cap of its RSS just before the answer arrived."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from syncd.cli import EXIT_RUNS_FAILED
from tests.support import db_rows, write_config

ROOT = Path(__file__).resolve().parents[2]
CAP = 16 << 20
EXIT_TIMEOUT_S = 60.0


@pytest.fixture
def hostile() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.http.hostile_server"], stdout=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line.startswith("port "), line
    try:
        yield f"http://127.0.0.1:{line.split()[1]}", proc
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _wait_for_line(proc: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    assert ready, "the daemon never asked for its listings"
    return proc.stdout.readline()


def _wait4(pid: int, timeout_s: float) -> tuple[int, int]:
    """(exit status, peak RSS in bytes) of a child, from the kernel's own accounting."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024
        time.sleep(0.05)
    raise AssertionError("the daemon did not exit")


def test_a_gzip_bomb_is_refused_within_twice_the_body_cap(
    database_url: str, tmp_path: Path, hostile: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, server = hostile
    document = {
        "daemon": {"state_dir": str(tmp_path), "log_level": "warning"},
        "database": {"url": database_url},
        "web": {"enabled": False},
        "partners": {
            "guesty": {
                "base_url": f"{url}/v1",
                "token_url": f"{url}/oauth2/token",
                "rate_limits": [],
                "max_attempts": 1,
                "max_body_bytes": CAP,
            }
        },
        "integrations": [
            {
                "id": "bombed",
                "partner": "guesty",
                "credentials": {"client_id": "c", "client_secret": "s"},
                "resources": {
                    "properties": {"deletion_sweep": False},
                    "reservations": {"enabled": False},
                },
            }
        ],
    }
    config = write_config(document, tmp_path)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run", "--once", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = None
    try:
        assert _wait_for_line(server, EXIT_TIMEOUT_S) == b"listings requested\n"
        idle = _rss_bytes(daemon.pid)  # started, connected, token in hand; no body yet
        daemon.returncode, peak = _wait4(daemon.pid, EXIT_TIMEOUT_S)  # reaped: Popen must know
    finally:
        if peak is None:  # not reaped by wait4
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == EXIT_RUNS_FAILED
    assert peak - idle < 2 * CAP, f"peak RSS {peak / 2**20:.1f} MiB, idle {idle / 2**20:.1f} MiB"
    [state] = anyio.run(
        db_rows,
        database_url,
        "SELECT last_error FROM sync_state WHERE integration_id = 'bombed' AND resource = 'properties'",
    )
    assert f"inflates past the {CAP}-byte cap" in state["last_error"]
    assert anyio.run(db_rows, database_url, "SELECT 1 FROM properties") == []
