"""Micro-benchmark of page rendering: ``python -m syncd.simulator.profiles.guesty.bench [--http]``.

Measures CPU microseconds per 100-record page, the simulator's share of the end-to-end
throughput budget (50,000 records/s on two cores shared with PostgreSQL and the daemon).
Pages are taken at spread-out offsets of a 1,000,000-listing account, sorted by
``lastUpdatedAt`` as an incremental sync asks for them. ``--http`` adds the round trip
over loopback (uvicorn + httpx in one process, so it also pays the client's parsing).
The last line printed is JSON, like every benchmark under ``bench/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

import orjson

from syncd.simulator.profiles.guesty import query as guesty_query
from syncd.simulator.profiles.guesty.data import GuestyAccount, QueryResult
from syncd.simulator.profiles.guesty.query import ListQuery


def _per_page_us(run: Callable[[ListQuery], QueryResult], total: int, pages: int, size: int) -> float:
    stride = max(1, (total - size) // max(1, pages))
    queries = [
        ListQuery(by_timestamp=True, skip=(k * stride) % max(1, total - size), limit=size)
        for k in range(pages)
    ]
    run(queries[0])  # warm the timestamp caches like a running server
    started = time.process_time()
    for q in queries:
        result = run(q)
        guesty_query.render_page(result.records, result.count, q)
    return (time.process_time() - started) / pages * 1e6


def bench_render(listings: int = 1_000_000, pages: int = 300, size: int = 100) -> dict[str, float]:
    account = GuestyAccount(seed=1, listings=listings)
    page_bytes = len(
        guesty_query.render_page(
            account.query_listings(ListQuery(limit=size)).records, listings, ListQuery(limit=size)
        )
    )
    out = {
        "listing_page_us": _per_page_us(account.query_listings, listings, pages, size),
        "reservation_page_us": _per_page_us(account.query_reservations, listings * 2, pages, size),
        "listing_page_bytes": float(page_bytes),
    }
    account.mutate(2000, seed=1)  # sparse overrides in the way: the slower, general path
    out["listing_page_us_after_mutations"] = _per_page_us(account.query_listings, listings, pages, size)
    return out


async def bench_http(listings: int = 100_000, pages: int = 200) -> dict[str, float]:
    import httpx

    from syncd.simulator import limits
    from syncd.simulator.server import Simulator, SimulatorServer

    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    sim.add_account("guesty", "bench", "bench", GuestyAccount(seed=1, listings=listings))
    async with SimulatorServer(sim) as server, httpx.AsyncClient(base_url=server.url("guesty")) as client:
        form = {
            "grant_type": "client_credentials",
            "scope": "open-api",
            "client_id": "bench",
            "client_secret": "bench",
        }
        token = (await client.post("/oauth2/token", data=form)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        records = 0
        for k in range(pages):
            params: dict[str, str | int] = {"limit": 100, "skip": k * 100, "sort": "lastUpdatedAt"}
            response = await client.get("/v1/listings", params=params, headers=headers)
            records += len(orjson.loads(response.content)["results"])
        wall = time.perf_counter() - started_wall
        cpu = time.process_time() - started_cpu
    return {
        "http_page_ms": wall / pages * 1e3,
        "http_cpu_page_ms": cpu / pages * 1e3,
        "http_records_per_s": records / wall,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m syncd.simulator.profiles.guesty.bench", description=__doc__
    )
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--listings", type=int, default=1_000_000)
    parser.add_argument("--http", action="store_true", help="also measure loopback round trips")
    args = parser.parse_args(argv)
    result = bench_render(args.listings, args.pages)
    if args.http:
        import anyio

        result.update(anyio.run(bench_http, min(args.listings, 100_000), args.pages))
    for key, value in result.items():
        sys.stdout.write(f"{key:>34}: {value:,.1f}\n")
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
