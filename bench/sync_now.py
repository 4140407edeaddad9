"""A user's "sync now" while every worker is busy and thousands of scheduled tasks wait.

    python bench/sync_now.py                          # 2,500 integrations x 2 resources, 100 samples
    python bench/sync_now.py --integrations 100 --samples 10

A real ``syncd run`` process syncs ``--integrations`` Guesty integrations (two resources
each: one scheduled task per integration x resource) from the simulator on 127.0.0.1, which
answers every request after ``--latency-ms``. Most integrations share a few large accounts,
so each of the ``--workers`` general slots stays busy with a sync of many pages; the last
``--samples`` integrations share a small account (a user's property: a short sync).

Each sample asks for a sync-now of one of those integrations whose scheduled tasks still
wait (``Store.sync_now``, what ``syncd sync-now`` does: coalesced into them, lifted to the
user's priority, NOTIFY), and measures on the database clock from the request
(``clock_timestamp()`` just before it) to the start of its tasks (``started_at``, the claim):
the later of the two resources. ``enqueued_at`` is not the start of the wait: the request
coalesces into a task queued long before. The next sample waits for the previous to end.

The last line printed is one JSON object: p50_s, p99_s, max_s, samples, queued (tasks
pending when sampling began), busy_workers (general slots running a scheduled sync when a
sample was asked for: the median; busy_workers_min the fewest, between one sync's end and the
next claim) and the settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syncd.simulator import limits  # noqa: E402 - after the path tweak
from syncd.simulator.profiles.guesty.data import GuestyAccount  # noqa: E402
from syncd.simulator.server import Simulator, SimulatorServer  # noqa: E402
from syncd.store.embedded import EmbeddedPostgres  # noqa: E402
from syncd.store.postgres import Store  # noqa: E402
from syncd.store.tasks import Priority  # noqa: E402

BIG_ACCOUNTS = 4
INTERVAL_S = 86_400  # scheduled tasks are queued once; nothing else becomes due meanwhile


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--integrations", type=int, default=2500, help="x 2 resources = scheduled tasks")
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--workers", type=int, default=8, help="general slots (worker_concurrency)")
    p.add_argument("--urgent-workers", type=int, default=2)
    p.add_argument("--latency-ms", type=float, default=200.0, help="the simulator's answer time")
    p.add_argument("--listings", type=int, default=10_000, help="per large account (100 per page)")
    p.add_argument("--sample-timeout-s", type=float, default=60.0)
    p.add_argument("--database-url", help="a server to use instead of an embedded one")
    args = p.parse_args(argv)
    if args.samples < 1 or args.integrations <= args.samples:
        p.error("--integrations must exceed --samples (>= 1): the targets are the last ones")
    return args


def quantile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the samples at or below it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"


def config_text(args: argparse.Namespace, server: SimulatorServer, dsn: str, state_dir: Path) -> str:
    resource = {"interval_s": INTERVAL_S, "deletion_sweep": False}
    lines = [
        "[daemon]",
        f"state_dir = {toml_value(str(state_dir))}",
        'log_level = "warning"',
        f"worker_concurrency = {args.workers}",
        f"urgent_workers = {args.urgent_workers}",
        "scheduler_tick_s = 1.0",
        "[database]",
        f"url = {toml_value(dsn)}",
        "[web]",
        "enabled = false",
        "[partners.guesty]",
        f"base_url = {toml_value(server.url('guesty', '/v1'))}",
        f"token_url = {toml_value(server.url('guesty', '/oauth2/token'))}",
        "rate_limits = []",
    ]
    for n in range(args.integrations):
        target = n >= args.integrations - args.samples
        account = "small" if target else f"big{n % BIG_ACCOUNTS}"
        lines += [
            "[[integrations]]",
            f'id = "{"target" if target else "busy"}-{n:05d}"',
            'partner = "guesty"',
            f"credentials = {toml_value({'client_id': account, 'client_secret': 'secret-' + account})}",
            f"resources = {toml_value({'properties': resource, 'reservations': resource})}",
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def postgres(url: str | None, directory: Path) -> Iterator[str]:
    if url is not None:
        yield url
        return
    embedded = EmbeddedPostgres(directory)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


async def scalar(conn: asyncpg.Connection, query: str, *args: Any) -> Any:
    return await conn.fetchval(query, *args)


async def wait_for(conn: asyncpg.Connection, query: str, *args: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await conn.fetchval(query, *args)
        if value:
            return value
        await asyncio.sleep(0.01)
    raise TimeoutError(f"not within {timeout_s}s: {query}")


async def measure(args: argparse.Namespace, dsn: str, workdir: Path) -> dict[str, Any]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False), latency_ms=(args.latency_ms,) * 2,
                    max_tokens_per_day=None)  # fmt: skip
    for n in range(BIG_ACCOUNTS):
        sim.add_account("guesty", f"big{n}", f"secret-big{n}", GuestyAccount(seed=n, listings=args.listings))
    sim.add_account("guesty", "small", "secret-small", GuestyAccount(seed=99, listings=3))
    async with SimulatorServer(sim) as server, Store.open(dsn, min_size=1, max_size=2) as store:
        await store.migrate()  # before the daemon: the bench watches the tasks table from the start
        config = workdir / "syncd.toml"
        config.write_text(config_text(args, server, dsn, workdir / "state"))
        with (workdir / "daemon.log").open("wb") as log:
            daemon = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "syncd", "run", "--config", str(config),
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        try:
            conn = await asyncpg.connect(dsn)
            try:
                return await sample(args, store, conn, daemon)
            finally:
                await conn.close()
        except BaseException:
            sys.stderr.write((workdir / "daemon.log").read_text()[-4000:])
            raise
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(daemon.wait(), 30)
            except TimeoutError:
                daemon.kill()
                await daemon.wait()


async def sample(
    args: argparse.Namespace, store: Store, conn: asyncpg.Connection, daemon: asyncio.subprocess.Process
) -> dict[str, Any]:
    tasks = 2 * args.integrations
    started = time.monotonic()
    # Every schedule queued, and every general slot taken by a scheduled sync.
    await wait_for(conn, "SELECT count(*) >= $1 FROM tasks", tasks, timeout_s=600)
    await wait_for(
        conn,
        "SELECT count(*) >= $1 FROM tasks WHERE state = 'running' AND priority = $2",
        args.workers,
        int(Priority.SCHEDULED),
        timeout_s=120,
    )
    if daemon.returncode is not None:
        raise RuntimeError(f"the daemon exited with {daemon.returncode}")
    startup_s = time.monotonic() - started
    queued = await scalar(conn, "SELECT count(*) FROM tasks WHERE state = 'pending'")
    latencies: list[float] = []
    busy: list[int] = []
    targets = [f"target-{n:05d}" for n in range(args.integrations - args.samples, args.integrations)]
    skipped = 0
    for target in targets:
        taken = "SELECT count(*) FROM tasks WHERE integration_id = $1 AND state <> 'pending'"
        if await scalar(conn, taken, target):
            # A general slot took (or took and ended) its scheduled sync: a request now would
            # wait behind that run, or find nothing queued to lift. Not the case measured.
            skipped += 1
            continue
        busy.append(
            await scalar(
                conn,
                "SELECT count(*) FROM tasks WHERE state = 'running' AND priority = $1",
                int(Priority.SCHEDULED),
            )
        )
        requested: datetime = await scalar(conn, "SELECT clock_timestamp()")
        resources = await store.sync_now(target)
        try:
            # Every task of the target was pending before the request (the check above), so
            # the request is done when all have started. A claim statement that began just
            # before the request may take a lifted task as it commits (its started_at, the
            # statement's now(), is then a little earlier): that start counts as 0.
            last_start: datetime = await wait_for(
                conn,
                "SELECT max(started_at) FROM tasks WHERE integration_id = $1"
                " HAVING count(*) = count(started_at) AND count(DISTINCT resource) = $2",
                target,
                len(resources),
                timeout_s=args.sample_timeout_s,
            )
            latencies.append(max(0.0, (last_start - requested).total_seconds()))
            if latencies[-1] > 1.0:
                print(f"{target}: started {latencies[-1]:.3f}s after the request", file=sys.stderr)
            await wait_for(
                conn,
                "SELECT bool_and(state NOT IN ('pending', 'running')) FROM tasks WHERE integration_id = $1",
                target,
                timeout_s=args.sample_timeout_s,
            )
        except TimeoutError:
            rows = await conn.fetch(
                "SELECT id, resource, priority, state, enqueued_at, not_before, started_at, finished_at,"
                " attempts, last_error FROM tasks WHERE integration_id = $1 ORDER BY id",
                target,
            )
            print(f"{target}: requested at {requested}", file=sys.stderr)
            for row in rows:
                print(dict(row), file=sys.stderr)
            raise
    return {
        "p50_s": round(statistics.median(latencies), 4),
        "p99_s": round(quantile(latencies, 0.99), 4),
        "max_s": round(max(latencies), 4),
        "samples": len(latencies),
        "skipped_taken": skipped,
        "queued": queued,
        "busy_workers": round(statistics.median(busy)),
        "busy_workers_min": min(busy),
        "workers": args.workers,
        "urgent_workers": args.urgent_workers,
        "integrations": args.integrations,
        "latency_ms": args.latency_ms,
        "startup_s": round(startup_s, 1),
        "target_p99_s": 1.0,
        # The box's load while sampling (other processes share its cores).
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        workdir = Path(tmp)
        with postgres(args.database_url, workdir / "pg") as server_dsn:
            dsn = server_dsn if args.database_url else asyncio.run(fresh_database(server_dsn))
            result = asyncio.run(measure(args, dsn, workdir))
    result["meets_target"] = result["p99_s"] < 1.0
    print(
        f"sync-now start: p50 {result['p50_s']:.3f}s p99 {result['p99_s']:.3f}s over {result['samples']} "
        f"samples, {result['queued']:,} tasks queued, {result['busy_workers']}/{args.workers} slots busy"
    )
    print(json.dumps(result))
    return 0


async def fresh_database(server_dsn: str) -> str:
    """A database of its own on the embedded server."""
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute("DROP DATABASE IF EXISTS syncd_bench_sync_now")
        await conn.execute("CREATE DATABASE syncd_bench_sync_now")
    finally:
        await conn.close()
    base, _, query = server_dsn.partition("?")
    return base.rsplit("/", 1)[0] + "/syncd_bench_sync_now" + (f"?{query}" if query else "")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
