"""``syncd demo``: embedded PostgreSQL + partner simulator + the daemon, on one machine.

Everything stays on 127.0.0.1. The simulator serves a few Guesty accounts and keeps
mutating them (updates, inserts, deletions) so incremental syncs have work to show; a
progress line per integration is redrawn every second from what landed in PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.abc

from syncd import errors
from syncd.app import Daemon
from syncd.config import load_settings
from syncd.connectors import registry
from syncd.observability import logging as syncd_logging
from syncd.simulator.server import (
    SimulateOptions,
    Simulator,
    SimulatorServer,
    build_simulator,
    guesty_credentials,
)

MUTATE_EVERY_S = 5.0
MUTATIONS_PER_ACCOUNT = 12


def demo_config_path() -> Path:
    for candidate in (Path("config/demo.toml"), Path(__file__).resolve().parents[1] / "config" / "demo.toml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("config/demo.toml not found (run from the syncd checkout)")


def _ago(ts: datetime | None) -> str:
    if ts is None:
        return "never"
    return f"{(datetime.now(UTC) - ts).total_seconds():.0f}s ago"


async def main(args: argparse.Namespace) -> int:
    sim = build_simulator(SimulateOptions(port=0, listings=args.listings, accounts=args.accounts))
    async with SimulatorServer(sim) as server:
        environ = {**os.environ, "SYNCD_DEMO_URL": server.base_url}
        settings = load_settings(demo_config_path(), environ, registry.schemas())
        ids = [i.id for i in settings.integrations][: args.accounts]
        settings = settings.model_copy(
            update={
                "daemon": settings.daemon.model_copy(update={"state_dir": args.state_dir}),
                "web": settings.web.model_copy(update={"port": args.port}),
                "integrations": settings.integrations[: args.accounts],
            }
        )
        syncd_logging.configure(settings.daemon.log_level, settings.daemon.log_format)
        daemon = Daemon(settings)
        print(f"syncd demo: simulator on {server.base_url} ({args.accounts} Guesty account(s))")
        print(f"  PostgreSQL (embedded) data directory: {(args.state_dir / 'pgdata').resolve()}")
        finished = anyio.Event()

        async def run_daemon(
            *, task_status: anyio.abc.TaskStatus[Daemon] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            try:
                await daemon.run(task_status=task_status)
            finally:
                finished.set()

        async with anyio.create_task_group() as tg:
            await tg.start(run_daemon)
            base = f"http://{settings.web.host}:{daemon.web_port}"
            print(f"  metrics: {base}/metrics   health: {base}/healthz   ready: {base}/readyz")
            print(f"  status page (open it in a browser): {base}/status")
            print("  Ctrl-C stops (the daemon drains, then the embedded PostgreSQL stops).\n")
            tg.start_soon(_mutate, sim, args.accounts)
            tg.start_soon(_progress, daemon, ids)
            if args.seconds is not None:
                tg.start_soon(_stop_after, daemon, args.seconds)
            await finished.wait()  # SIGINT/SIGTERM (or --seconds) drains the daemon, then it returns
            tg.cancel_scope.cancel()
    print("\nsyncd demo: stopped")
    return 0


def _finished(daemon: Daemon) -> bool:
    return (
        daemon.runner is None
        or not any(daemon.runner.progress)
        or daemon.metrics.syncs_in_flight._value.get() == 0
    )


async def _stop_after(daemon: Daemon, seconds: float) -> None:
    await anyio.sleep(seconds)
    daemon.request_stop()


async def _mutate(sim: Simulator, accounts: int) -> None:
    round_no = 0
    while True:
        await anyio.sleep(MUTATE_EVERY_S)
        round_no += 1
        for n in range(1, accounts + 1):
            sim.account(guesty_credentials(n)[0]).mutate(MUTATIONS_PER_ACCOUNT, seed=round_no * 100 + n)


async def _progress(daemon: Daemon, ids: list[str]) -> None:
    tty = sys.stdout.isatty()
    drawn = 0
    last_plain = 0.0
    while True:
        await anyio.sleep(1.0)
        if daemon.store is None:
            continue
        try:
            rows = await daemon.store.progress(ids)
        except errors.StoreUnavailable:
            if daemon.stop.is_set():
                return  # the daemon is draining and has closed its pool: nothing to show
            continue  # the database is restarting: the daemon rides it out, and so do we
        lines = [
            f"{r['id']:<14} properties {r['properties']:>7,}  changed {r['changed']:>5,}  "
            f"deleted {r['deleted']:>4,}  reservations {r['reservations']:>7,}  "
            f"dead letters {r['dead_letters']:>3}  last sync {_ago(r['last_success_at'])}"
            for r in rows
        ]
        if tty:
            sys.stdout.write("\x1b[F\x1b[2K" * drawn + "\n".join(lines) + "\n")
            drawn = len(lines)
        elif time.monotonic() - last_plain >= 5:
            sys.stdout.write("\n".join(lines) + "\n")
            last_plain = time.monotonic()
        sys.stdout.flush()
