"""A queue partner drained: Booking.com's reservation queue (the simulator's ``booking_com``
profile, in this process) -> run-once daemons (this process) -> PostgreSQL (embedded).

    python bench/queue_drain.py                         # 10,000 reservations, 10 % faults
    python bench/queue_drain.py --faults 0 --size 50000

Each poll is one page whose commit precedes its acknowledgement and the next poll, so the
drain is a sequence of round trips (GET, COPY + upsert + commit, POST); the partner's
pace (5 s after an acknowledgement, 20 s after an empty poll) is switched off here: it
would be the whole figure. Faults: RELIABILITY row 6's mix at ``--faults`` percent.

Figures (the last line printed is one JSON object): ``seconds`` and ``reservations_per_s``
of the drain, ``runs`` (run-once daemons it took), ``deliveries`` (reservations handed
out, redeliveries included), ``ack_posts``,
``redeliveries`` (reservations the simulator handed out again: answers lost to faults),
``rows`` and ``equal_to_truth`` (every row byte-equal to the partner's reservation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syncd.app import Daemon  # noqa: E402 - after the path tweak
from syncd.config import parse_settings  # noqa: E402
from syncd.connectors import registry  # noqa: E402
from syncd.simulator import fault_presets, limits  # noqa: E402
from syncd.simulator.profile import DatasetOptions  # noqa: E402
from syncd.simulator.profiles.booking_com.data import BookingAccount  # noqa: E402
from syncd.simulator.server import Simulator, SimulatorServer  # noqa: E402
from syncd.store.embedded import EmbeddedPostgres  # noqa: E402

PARTNER = "booking_com"
MAX_RUNS = 20


async def scenario(args: argparse.Namespace, dsn: str, tmp: Path) -> dict[str, Any]:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    account_id, secret = profile.credentials(1)
    options = DatasetOptions(extra={"per_poll": args.per_poll})
    data: BookingAccount = sim.add_account(
        PARTNER, account_id, secret, profile.dataset(1, args.size, options)
    )
    if args.faults:
        sim.set_faults(fault_presets.dirty_network(args.faults, accounts=(account_id,), seed=args.seed))
    async with SimulatorServer(sim) as server:
        document = {
            "daemon": {"state_dir": str(tmp / "state"), "log_level": "warning", "retry_failed_after_s": 0},
            "database": {"url": dsn},
            "web": {"enabled": False},
            "partners": {
                PARTNER: {
                    "base_url": server.url(PARTNER, "/hotels"),
                    "token_url": server.url(PARTNER, "/token-based-authentication/exchange"),
                    "read_timeout_s": 0.5,
                    "queue_empty_poll_s": 0,
                    "queue_ack_pause_s": 0,
                }
            },
            "integrations": [
                {
                    "id": "bench",
                    "partner": PARTNER,
                    "credentials": profile.config_credentials(account_id, secret),
                    "resources": {"reservations": {"interval_s": 0.001}},
                }
            ],
        }
        settings = parse_settings(document, {}, registry.schemas())
        started = time.perf_counter()
        runs = 0
        while data.pending() != {"new": 0, "modified": 0} and runs < MAX_RUNS:
            runs += 1
            await Daemon(settings, once=True).run()
        seconds = time.perf_counter() - started
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT external_id, raw FROM reservations WHERE integration_id = 'bench'")
    finally:
        await conn.close()
    truth = {t["id"]: t["payload"].encode() for t in map(orjson.loads, profile.truth(data, None))}
    return {
        "bench": "queue_drain",
        "reservations": args.size,
        "faults_percent": args.faults,
        "seconds": round(seconds, 2),
        "reservations_per_s": round(args.size / seconds, 1),
        "runs": runs,
        "deliveries": data.deliveries,
        "ack_posts": data.ack_posts,
        "redeliveries": data.redeliveries,
        "rows": len(rows),
        "equal_to_truth": {r["external_id"]: bytes(r["raw"]) for r in rows} == truth,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=10_000, help="reservations waiting in the queue")
    parser.add_argument(
        "--per-poll", type=int, default=100, help="reservations the partner hands out per poll"
    )
    parser.add_argument(
        "--faults", type=float, default=10.0, help="percent of requests faulted (row 6's mix)"
    )
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-queue-") as tmp:
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
