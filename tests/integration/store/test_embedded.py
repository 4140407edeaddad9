"""The embedded default: no database URL -> a private PostgreSQL under the state directory,
kept across restarts, stopped on exit (including SIGTERM)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import psutil
import pytest

from syncd import errors
from syncd.store import embedded
from syncd.store.embedded import TUNING, TUNING_FILE, EmbeddedPostgres

pytestmark = pytest.mark.slow


def postgres_running_on(pgdata: Path) -> bool:
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(cmdline):
            return True
    return False


def test_migrate_twice_on_the_embedded_default_keeps_data_and_stops_the_server(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\nlog_format = "json"\n')
    pgdata = (tmp_path / "state" / "pgdata").resolve()
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "syncd", "migrate", "--config", str(config)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert (pgdata / "PG_VERSION").is_file()
        assert '"embedded_postgres_started"' in proc.stderr and '"embedded_postgres_stopped"' in proc.stderr
        assert not postgres_running_on(pgdata)


def test_sigterm_stops_the_embedded_server(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n[web]\nport = 0\n')
    pgdata = (tmp_path / "state" / "pgdata").resolve()
    log = tmp_path / "daemon.log"
    with (
        log.open("w") as err,
        subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + 60
            while not postgres_running_on(pgdata):
                assert time.monotonic() < deadline, "embedded PostgreSQL did not start"
                time.sleep(0.1)
            time.sleep(1.0)  # let the daemon finish starting
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    assert not postgres_running_on(pgdata)


def test_the_embedded_server_runs_with_the_write_tuning(pg_server: str) -> None:
    """The settings of ``TUNING`` reach the server (the suite's own server is embedded)."""
    if os.environ.get("SYNCD_TEST_DATABASE_URL"):
        pytest.skip("the suite runs on an external server")

    async def settings() -> dict[str, str]:
        conn = await asyncpg.connect(pg_server)
        try:
            return {key: await conn.fetchval("SELECT current_setting($1)", key) for key in TUNING}
        finally:
            await conn.close()

    assert asyncio.run(settings()) == TUNING


def test_tuning_reaches_a_data_directory_made_by_an_earlier_version(tmp_path: Path) -> None:
    """An upgrade's tuning applies at the next start: older versions appended their
    settings to postgresql.conf once, at creation, and never again."""
    pg = EmbeddedPostgres(tmp_path)
    pg.start()
    pg.stop()
    conf = pg.pgdata / "postgresql.conf"
    before_syncd = conf.read_text().split("\n# syncd embedded defaults\n")[0]
    conf.write_text(
        before_syncd + "\n# syncd embedded defaults\nshared_buffers = '256MB'\nwal_init_zero = 'on'\n"
    )
    (pg.pgdata / TUNING_FILE).unlink()

    async def wal_init_zero(dsn: str) -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return str(await conn.fetchval("SELECT current_setting('wal_init_zero')"))
        finally:
            await conn.close()

    dsn = pg.start()
    try:
        assert asyncio.run(wal_init_zero(dsn)) == TUNING["wal_init_zero"] == "off"
    finally:
        pg.stop()
    pg.start()  # a second start does not include the file twice
    pg.stop()
    assert conf.read_text().count(f"include_if_exists '{TUNING_FILE}'") == 1


def test_a_server_that_refuses_to_start_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data directory that cannot run at our tuning (here: a replication slot, made by an
    operator at wal_level replica, which wal_level minimal refuses) fails the start with
    the server's own reason and its hint, not pg_ctl's exit status."""
    pg = EmbeddedPostgres(tmp_path)
    with monkeypatch.context() as patched:
        patched.setitem(embedded.TUNING, "wal_level", "replica")
        patched.setitem(embedded.TUNING, "max_wal_senders", "2")
        dsn = pg.start()

        async def make_slot() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("SELECT pg_create_physical_replication_slot('standby')")
            finally:
                await conn.close()

        try:
            asyncio.run(make_slot())
        finally:
            pg.stop()
    with pytest.raises(errors.StoreError) as refused:
        pg.start()
    message = str(refused.value)
    assert 'physical replication slot "standby" exists' in message
    assert '"wal_level" to be "replica" or higher' in message  # the server's hint
    assert str(pg.pgdata / "log") in message
    assert not pg.running
    assert not postgres_running_on(pg.pgdata)
