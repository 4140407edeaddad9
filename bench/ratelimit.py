"""Rate-limit budget use against the partner simulator enforcing Guesty's documented tiers.

    python bench/ratelimit.py                   # ~6 min: the three scenarios below
    python bench/ratelimit.py --steady-s 30     # a quicker look

One integration's full client stack (throttle, breakers, retries, metrics, logs) with
Guesty's tiers (15/s, 120/min, 5000/h) and the default safety factor 0.8, driven by
``--workers`` coroutines (a sync's prefetch plus several resources), against the
simulator with 50-200 ms latency on 127.0.0.1, in real time.

1. steady: ``--steady-s`` seconds. Budget = what the client's own limits allow from an
   empty start, min over tiers of 0.8 x limit x (1 + T / period); used = requests the
   partner accepted (sent within the window) / budget. Targets: >= 95 %, 0 429s.
2. halved: the same run continues and the partner silently halves its limits (headers
   keep advertising the documented ones) for ``--after-s`` seconds. Reported: 429s, the
   seconds from the change until the last 429 (target <= 10), and the settled throughput
   (the last ``--settle-s`` seconds) against the new per-minute limit.
3. halved_in_burst: a fresh account is halved ``--burst-halve-at-s`` seconds in, while
   its minute counter is above the new limit, so 429s cannot be avoided; same report.

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# After the path tweak: the benchmark runs from a checkout without installing it.
from syncd.connectors import guesty  # noqa: E402
from syncd.http.auth import HeaderAuth  # noqa: E402
from syncd.http.client import ClientOptions, PartnerClient  # noqa: E402
from syncd.http.guards import Guards, LimitSpec  # noqa: E402
from syncd.http.tiers import Tier, parse_tier  # noqa: E402
from syncd.http.transport import PartnerTransport  # noqa: E402
from syncd.observability import logging as syncd_logging  # noqa: E402
from syncd.observability.metrics import Metrics  # noqa: E402
from syncd.simulator.profiles.guesty.data import GuestyAccount  # noqa: E402
from syncd.simulator.server import Simulator, SimulatorServer  # noqa: E402
from syncd.testing import RecordingTransport  # noqa: E402

SAFETY = 0.8
TIERS = [parse_tier(t) for t in guesty.PARTNER.rate_limits]
TARGET_USED = 0.95
TARGET_STOP_S = 10.0


@dataclass
class Run:
    client: PartnerClient
    recording: RecordingTransport
    ids: list[str]
    errors: list[str] = field(default_factory=list)


def budget(tiers: list[Tier], factor: float, seconds: float) -> float:
    """Requests leaky buckets at ``factor`` x each tier admit in ``seconds`` from empty."""
    return min(t.limit * factor * (1.0 + seconds / t.period_s) for t in tiers)


async def drive(run: Run, workers: int, seconds: float) -> None:
    """``workers`` coroutines GET listings through one client until ``seconds`` pass."""

    async def worker(n: int) -> None:
        i = n
        while True:
            listing = run.ids[i % len(run.ids)]
            i += workers
            try:
                await run.client.get("/listings/{id}", f"/listings/{listing}", decode=orjson.loads)
            except Exception as exc:  # a benchmark reports failures instead of dying on them
                run.errors.append(f"{type(exc).__name__}: {exc}"[:200])

    with anyio.move_on_after(seconds):
        async with anyio.create_task_group() as tg:
            for n in range(workers):
                tg.start_soon(worker, n)


def summarize(sent: list[tuple[float, int]], start: float, end: float) -> tuple[int, int]:
    ok = sum(1 for t, s in sent if start <= t < end and s == 200)
    limited = sum(1 for t, s in sent if start <= t < end and s == 429)
    return ok, limited


def halving_report(
    sent: list[tuple[float, int]], halved_at: float, end: float, settle_s: float
) -> dict[str, Any]:
    after = [(t, s) for t, s in sent if halved_at <= t < end]
    limited = [t for t, s in after if s == 429]
    ok_settled = sum(1 for t, s in after if s == 200 and t >= end - settle_s)
    minute = next(t for t in TIERS if t.period_s == 60.0)
    new_limit_rps = minute.limit * 0.5 / minute.period_s
    settled_rps = ok_settled / settle_s
    return {
        "responses_429": len(limited),
        "first_429_after_s": round(limited[0] - halved_at, 2) if limited else None,
        "seconds_until_429s_stop": round(limited[-1] - halved_at, 2) if limited else 0.0,
        "settled_rps": round(settled_rps, 3),
        "new_limit_rps": new_limit_rps,
        "settled_vs_new_limit": round(settled_rps / new_limit_rps, 3),
        "settled_vs_new_budget": round(settled_rps / (new_limit_rps * SAFETY), 3),
    }


async def scenario(
    sim: Simulator, server: SimulatorServer, client_id: str, metrics: Metrics, guards: Guards
) -> Run:
    account = sim.account(client_id)
    ids = [t.id for t in account.truth_listings()]
    async with httpx.AsyncClient() as http:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": f"{client_id}-secret",
            "scope": "open-api",
        }
        response = await http.post(server.url("guesty", "/oauth2/token"), data=form)
        response.raise_for_status()
        access = str(response.json()["access_token"])
    throttle, breakers = guards.for_integration(
        "guesty",
        client_id,
        LimitSpec(tiers=TIERS, safety_factor=SAFETY, max_concurrency=guesty.PARTNER.max_concurrency),
    )
    recording = RecordingTransport(PartnerTransport())
    options = ClientOptions(partner="guesty", integration_id=client_id, base_url=server.url("guesty", "/v1"))
    client = PartnerClient(
        recording,
        options,
        throttle=throttle,
        breakers=breakers,
        metrics=metrics,
        log=syncd_logging.get_logger(),
        auth=HeaderAuth("Authorization", f"Bearer {access}"),
    )
    return Run(client, recording, ids)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sim = Simulator(latency_ms=(50, 200))
    for name in ("steady", "burst"):
        sim.add_account("guesty", name, f"{name}-secret", GuestyAccount(seed=7, listings=200))
    metrics = Metrics()
    guards = Guards(metrics, syncd_logging.get_logger())
    async with SimulatorServer(sim) as server:
        # 1 + 2: steady, then the partner halves its limits silently.
        run = await scenario(sim, server, "steady", metrics, guards)
        started = time.monotonic()
        await drive(run, args.workers, args.steady_s)
        steady_end = time.monotonic()
        first = min(t for t, _ in run.recording.sent)
        ok, limited = summarize(run.recording.sent, first, steady_end)
        allowed = budget(TIERS, SAFETY, steady_end - first)
        sim.set_limits(factor=0.5, advertise_documented=True)
        halved_at = time.monotonic()
        await drive(run, args.workers, args.after_s)
        halved_end = time.monotonic()
        halved = halving_report(run.recording.sent, halved_at, halved_end, args.settle_s)
        steady_errors = list(run.errors)

        # 3: halved while the partner's minute counter is above the new limit.
        sim.set_limits(factor=1.0, advertise_documented=False)
        burst = await scenario(sim, server, "burst", metrics, guards)
        await drive(burst, args.workers, args.burst_halve_at_s)
        sim.set_limits(factor=0.5, advertise_documented=True)
        burst_halved_at = time.monotonic()
        await drive(burst, args.workers, args.after_s)
        burst_report = halving_report(burst.recording.sent, burst_halved_at, time.monotonic(), args.settle_s)
        for finished in (run, burst):
            await finished.recording.aclose()
    return {
        "steady": {
            "duration_s": round(steady_end - started, 1),
            "workers": args.workers,
            "tiers": [str(t) for t in TIERS],
            "safety_factor": SAFETY,
            "requests_ok": ok,
            "budget": round(allowed, 1),
            "budget_used": round(ok / allowed, 4),
            "responses_429": limited,
            "errors": len(steady_errors),
        },
        "halved": {"after_s": args.after_s, **halved},
        "halved_in_burst": {"halved_at_s": args.burst_halve_at_s, "after_s": args.after_s, **burst_report},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steady-s", type=float, default=130.0)
    parser.add_argument("--after-s", type=float, default=90.0)
    parser.add_argument("--settle-s", type=float, default=45.0)
    parser.add_argument("--burst-halve-at-s", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with open(os.devnull, "w") as sink:
        syncd_logging.configure("info", "json", stream=sink)
        result = anyio.run(main_async, args, backend="asyncio", backend_options={"use_uvloop": True})
    steady, halved, burst = result["steady"], result["halved"], result["halved_in_burst"]
    result["pass"] = bool(
        steady["budget_used"] >= TARGET_USED
        and steady["responses_429"] == 0
        and halved["seconds_until_429s_stop"] <= TARGET_STOP_S
        and burst["seconds_until_429s_stop"] <= TARGET_STOP_S
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
