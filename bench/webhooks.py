"""Webhooks end to end: signed deliveries posted as fast as they are answered -> the daemon
(``syncd run``, its own process) -> a targeted fetch per record -> PostgreSQL.

    python bench/webhooks.py                    # 10 s smoke run
    python bench/webhooks.py --seconds 60       # the measured run (bench/RESULTS.md)
    python bench/webhooks.py --seconds 60 --rate 50   # paced: freshness below saturation

Setup: one embedded PostgreSQL; the partner simulator in this process (limits off), with
``--accounts`` Svix-signing accounts of ``--listings`` listings each; the daemon syncs them
once (hour-long intervals, so nothing but webhooks moves data afterwards).

Load: ``--concurrency`` posters, each in a loop: change one listing at the simulator (a
new version with a newer timestamp; listings taken in turn, so one record changes again
only after every other has), then POST a Svix-signed ``listing.updated`` naming it and
wait for the answer. For ``--seconds``, then the queue drains.

Figures (the last line printed is one JSON object):
* ``accepted_per_s``: 2xx answers per second of the load phase;
* ``visible_p50_s`` / ``visible_p99_s``: from just before the POST (this host's clock) to
  the change event of the changed row (``events.occurred_at``, PostgreSQL's clock on the
  same host: the start of the transaction that committed the row), per delivery; a
  delivery whose change was taken up by a later fetch of the same record (both pending
  at once coalesce) counts until that fetch's event;
* ``lost``: deliveries whose change never became visible; ``stale_rows``: rows whose
  timestamp differs from the simulator's at the end; ``applied_twice``: change events
  repeated for one record and timestamp (each must be applied once);
* ``fetches``: the partner GETs of single listings the daemon made (the simulator's log).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syncd import svix  # noqa: E402 - after the path tweak
from syncd.simulator import limits  # noqa: E402
from syncd.simulator.profiles.guesty.data import GuestyAccount  # noqa: E402
from syncd.simulator.server import Simulator, SimulatorServer  # noqa: E402
from syncd.store.embedded import EmbeddedPostgres  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"bench-signing-key-of-32-bytes-xx").decode()
TARGET_P99_S = 2.0
DRAIN_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, dsn: str, sim_url: str, web_port: int, accounts: list[str], urgent: int) -> None:
    integrations = "".join(
        f"""
[[integrations]]
id = "bench-{n}"
partner = "guesty"
credentials = {{ client_id = "{account}", client_secret = "sim-secret-{n}" }}
webhook_secrets = ["{SECRET}"]
resources.properties = {{ interval_s = 3600, overlap_s = 0, deletion_sweep = false }}
"""
        for n, account in enumerate(accounts, 1)
    )
    path.write_text(
        f"""
[daemon]
state_dir = "{path.parent}"
log_level = "warning"
urgent_workers = {urgent}
[database]
url = "{dsn}"
[web]
port = {web_port}
[partners.guesty]
base_url = "{sim_url}/guesty/v1"
token_url = "{sim_url}/guesty/oauth2/token"
rate_limits = []
max_concurrency = 64
{integrations}"""
    )


class Load:
    """The posters' shared state: which listing changes next, what was posted when."""

    def __init__(self, sim: Simulator, accounts: list[str], listings: int) -> None:
        self.sim = sim
        self.accounts = accounts
        self.listings = listings
        self.turn = 0
        # Per account, the next change's timestamp (ms): after every base timestamp.
        self.clock_ms = {a: self.data(a).listing_table.max_base_ts() + 1000 for a in accounts}
        self.posted: list[tuple[str, str, int, float]] = []  # integration, listing, ts_ms, t_post
        self.accepted = 0
        self.refused: dict[int, int] = {}
        self.started = time.monotonic()
        self.sent = 0

    def data(self, account: str) -> GuestyAccount:
        found: GuestyAccount = self.sim.account(account)
        return found

    def change(self) -> tuple[int, str, bytes, int]:
        """The next listing changed at the simulator: (account index, id, event body, ts)."""
        n = self.turn % len(self.accounts)
        i = (self.turn // len(self.accounts)) % self.listings
        self.turn += 1
        account = self.accounts[n]
        data = self.data(account)
        self.clock_ms[account] += 1
        data.listing_table.update(i, self.clock_ms[account])
        listing = data.listing_id(i)
        record = data.get_listing(listing)
        assert record is not None
        body = b'{"event":"listing.updated","listing":%s,"meta":{"eventId":"%d"}}' % (record, self.turn)
        return n, listing, body, self.clock_ms[account]


async def poster(load: Load, client: httpx.AsyncClient, base: str, until: float, rate: float) -> None:
    while time.monotonic() < until:
        if rate > 0:  # paced: the k-th delivery leaves at start + k / rate
            load.sent += 1
            await anyio.sleep(max(0.0, load.started + load.sent / rate - time.monotonic()))
        n, listing, body, ts_ms = load.change()
        integration = f"bench-{n + 1}"
        headers = {
            "content-type": "application/json",
            **svix.headers([SECRET], f"msg_{load.turn}", int(time.time()), body),
        }
        started = time.time()
        response = await client.post(f"{base}/webhooks/guesty/{integration}", content=body, headers=headers)
        if 200 <= response.status_code < 300:
            load.accepted += 1
            load.posted.append((integration, listing, ts_ms, started))
        else:
            load.refused[response.status_code] = load.refused.get(response.status_code, 0) + 1


async def wait_for(conn: asyncpg.Connection, query: str, timeout_s: float) -> None:
    with anyio.fail_after(timeout_s):
        while True:  # another process's effects: polled
            try:
                if await conn.fetchval(query):
                    return
            except asyncpg.UndefinedTableError:
                pass  # the daemon has not migrated the schema yet
            await anyio.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(q * len(ranked)))]


def process_cpu_s(pid: int, children: bool = False) -> float:
    """CPU seconds used so far by a live process (and its reaped children, if asked)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = int(fields[11]) + int(fields[12])  # utime, stime
    return (used + (int(fields[13]) + int(fields[14]) if children else 0)) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s(pgdata: Path) -> float:
    """The server's CPU seconds: the postmaster, its live children and its reaped ones."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = process_cpu_s(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    total += process_cpu_s(int(entry.name))
            except (OSError, ValueError):
                continue  # exited meanwhile: now counted in the postmaster's cutime
    return total


def cpu(daemon_pid: int, pgdata: Path) -> dict[str, float]:
    return {
        "daemon": process_cpu_s(daemon_pid),
        "postgres": postgres_cpu_s(pgdata),
        "bench": process_cpu_s(os.getpid()),  # the posters and the simulator
    }


async def scenario(args: argparse.Namespace, dsn: str, workdir: Path) -> dict[str, Any]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    accounts = []
    for n in range(1, args.accounts + 1):
        account_id = f"guesty-acct-{n}"
        sim.add_account("guesty", account_id, f"sim-secret-{n}", GuestyAccount(n, args.listings, 0))
        accounts.append(account_id)
    async with SimulatorServer(sim) as server:
        web_port = free_port()  # after the simulator took its own
        config = workdir / "syncd.toml"
        write_config(config, dsn, server.base_url, web_port, accounts, args.urgent_workers)
        daemon = await anyio.open_process(
            [sys.executable, "-m", "syncd", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        conn = await asyncpg.connect(dsn)
        try:
            # Every integration's first sync finished (the daemon serves by then).
            finished = f"SELECT count(*) = {args.accounts} FROM schedules WHERE last_finished_at IS NOT NULL"
            await wait_for(conn, finished, 300)
            print(f"initial sync of {args.accounts} x {args.listings} listings done", flush=True)
            sim.request_log.reset()
            load = Load(sim, accounts, args.listings)
            base = f"http://127.0.0.1:{web_port}"
            limits_ = httpx.Limits(
                max_connections=args.concurrency, max_keepalive_connections=args.concurrency
            )
            before = cpu(daemon.pid, workdir / "pgdata")
            async with httpx.AsyncClient(limits=limits_, timeout=30, trust_env=False) as client:
                started = load.started = time.monotonic()
                until = started + args.seconds
                async with anyio.create_task_group() as tg:
                    for _ in range(args.concurrency):
                        tg.start_soon(poster, load, client, base, until, args.rate)
                elapsed = time.monotonic() - started
            print(f"posted for {elapsed:.1f} s: {load.accepted} accepted; draining", flush=True)
            await wait_for(
                conn, "SELECT count(*) = 0 FROM tasks WHERE state IN ('pending', 'running')", DRAIN_TIMEOUT_S
            )
            after = cpu(daemon.pid, workdir / "pgdata")
            result = await measure(conn, sim, load, elapsed, args)
            # CPU per accepted delivery, load and drain together (ms).
            result["cpu_ms_per_delivery"] = {
                k: round(1000 * (after[k] - before[k]) / max(1, load.accepted), 3) for k in after
            }
            return result
        finally:
            await conn.close()
            daemon.terminate()
            with anyio.fail_after(60):
                await daemon.wait()


async def measure(
    conn: asyncpg.Connection, sim: Simulator, load: Load, elapsed: float, args: argparse.Namespace
) -> dict[str, Any]:
    events = await conn.fetch(
        "SELECT integration_id, external_id, source_updated_at, occurred_at FROM events "
        "WHERE resource = 'properties' AND kind = 'updated' ORDER BY source_updated_at"
    )
    by_record: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    for e in events:
        by_record.setdefault((e[0], e[1]), []).append((e[2], e[3]))
    twice = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE resource = 'properties' "
        "GROUP BY integration_id, external_id, source_updated_at HAVING count(*) > 1) AS t"
    )
    latencies: list[float] = []
    lost = 0
    for integration, listing, ts_ms, posted_at in load.posted:
        changed = datetime.fromtimestamp(ts_ms / 1000, UTC)
        # The first change event at or after this delivery's change (a coalesced fetch read a newer one).
        seen = next((at for ts, at in by_record.get((integration, listing), []) if ts >= changed), None)
        if seen is None:
            lost += 1
        else:
            latencies.append(seen.timestamp() - posted_at)
    stale = 0
    for n, account in enumerate(load.accounts, 1):
        data = load.data(account)
        rows = await conn.fetch(
            "SELECT external_id, source_updated_at FROM properties WHERE integration_id = $1", f"bench-{n}"
        )
        stored = {r[0]: r[1] for r in rows}
        for i, ts_ms in data.listing_table.timestamps.items():  # the changed listings
            if stored.get(data.listing_id(i)) != datetime.fromtimestamp(ts_ms / 1000, UTC):
                stale += 1
    fetches = sim.request_log.count(method="GET", path="/guesty/v1/listings/{id}")
    deliveries = await conn.fetchval("SELECT count(*) FROM webhook_deliveries")
    p99 = percentile(latencies, 0.99)
    return {
        "bench": "webhooks",
        "seconds": round(elapsed, 2),
        "concurrency": args.concurrency,
        "rate_limit_per_s": args.rate or None,
        "accounts": args.accounts,
        "listings_per_account": args.listings,
        "urgent_workers": args.urgent_workers,
        "accepted": load.accepted,
        "accepted_per_s": round(load.accepted / elapsed, 1),
        "refused": load.refused,
        "deliveries_stored": deliveries,
        "fetches": fetches,
        "visible_p50_s": round(percentile(latencies, 0.50), 3),
        "visible_p99_s": round(p99, 3),
        "visible_max_s": round(max(latencies, default=float("nan")), 3),
        "visible_mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "lost": lost,
        "stale_rows": stale,
        "applied_twice": twice,
        "target_p99_s": TARGET_P99_S,
        "meets_target": p99 < TARGET_P99_S and lost == 0 and twice == 0 and stale == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="load phase (the measured run: 60)")
    parser.add_argument("--concurrency", type=int, default=16, help="posters, each waiting for its answer")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="deliveries per second in all (0: as fast as answered)"
    )
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--listings", type=int, default=2000, help="per account")
    parser.add_argument(
        "--urgent-workers",
        type=int,
        default=32,
        help="the daemon's urgent_workers: slots only urgent tasks (webhook fetches) take",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-webhooks-") as tmp:
        pg = EmbeddedPostgres(Path(tmp))
        dsn = pg.start()
        try:
            result = anyio.run(scenario, args, dsn, Path(tmp), backend_options={"use_uvloop": True})
        finally:
            pg.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.pop("SYNCD_DATABASE_URL", None)
    main()
