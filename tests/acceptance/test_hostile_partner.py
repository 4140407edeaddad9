"""A real ``syncd run`` against a partner whose listings page is a gzip bomb (1 GiB of
zeros): the page is refused at ``max_body_bytes`` and the daemon's peak RSS stays within
twice that cap of its RSS just before the answer arrived."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.integration.http.scripted import hostile_partner
from tests.support import db_rows, write_config

CAP = 16 << 20
TIMEOUT_S = 60.0


@pytest.fixture
def hostile() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with hostile_partner() as found:
        yield found


def _status_bytes(pid: int, field: str) -> int:
    """A size from /proc/<pid>/status. The daemon's own: ``ru_maxrss`` would not do, since
    Linux carries into it the RSS of the forked parent (this test process) before exec."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def _wait_for_line(proc: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    assert ready, "the daemon never asked for its listings"
    return proc.stdout.readline()


def _last_error(database_url: str) -> str | None:
    rows = anyio.run(
        db_rows,
        database_url,
        "SELECT last_error FROM sync_state WHERE integration_id = 'bombed' AND resource = 'properties'",
    )
    return rows[0]["last_error"] if rows else None


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
    # The daemon, not --once: it stays up after the refusal, so its own high-water mark
    # can be read before it exits.
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for_line(server, TIMEOUT_S) == b"listings requested\n"
        idle = _status_bytes(daemon.pid, "VmRSS")  # started, connected, token in hand; no body yet
        deadline = time.monotonic() + TIMEOUT_S
        while (error := _last_error(database_url)) is None:
            assert time.monotonic() < deadline, "the run never ended"
            time.sleep(0.1)
        peak = _status_bytes(daemon.pid, "VmHWM")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(TIMEOUT_S) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert peak - idle < 2 * CAP, f"peak RSS {peak / 2**20:.1f} MiB, idle {idle / 2**20:.1f} MiB"
    assert f"inflates past the {CAP}-byte cap" in error
    assert anyio.run(db_rows, database_url, "SELECT 1 FROM properties") == []
