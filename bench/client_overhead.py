"""CPU per request of the full partner-client stack vs bare httpx, same local server.

    python bench/client_overhead.py                  # 5 rounds of 2,000 requests each way
    python bench/client_overhead.py --requests 500   # quicker

The server is the partner simulator (no latency) in a separate process, so the
CPU measured here (``time.process_time`` of this process) is the client's alone. Both
sides GET the same listing with the same bearer token and parse the body with orjson:

- bare:  ``httpx.AsyncClient.get`` + ``orjson.loads``.
- stack: ``PartnerClient.get``: OAuth2 client-credentials auth (token cached, as in steady
  state), the throttle with generous limits (three tiers, concurrency cap), both circuit
  breakers, the tenacity retry loop, metrics, and the ``api_call`` log event rendered as
  JSON (written to /dev/null), and the bounded body reader, over the default transport
  (httpcore and h11 on syncd's socket layer, routed per origin: ``syncd.http.transport``).
- transport: that transport alone (one ``httpx.Request`` in, the body read out), so the
  stack's own cost is visible too: ``stack - transport``.

Rounds alternate bare and stack to share any drift of the machine; the figure is the
median per-request CPU of each. Target: ratio <= 1.3. The last line printed is one JSON
object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# After the path tweak: the benchmark runs from a checkout without installing it.
from syncd.http.auth import ClientCredentials, TokenTransaction  # noqa: E402
from syncd.http.client import ClientOptions, PartnerClient  # noqa: E402
from syncd.http.guards import Guards, LimitSpec  # noqa: E402
from syncd.http.tiers import parse_tier  # noqa: E402
from syncd.http.transport import PartnerTransport  # noqa: E402
from syncd.observability import logging as syncd_logging  # noqa: E402
from syncd.observability.metrics import Metrics  # noqa: E402
from syncd.store.types import StoredToken  # noqa: E402

TARGET_RATIO = 1.3
Call = Callable[[], Awaitable[Any]]
# The simulator enforces (and advertises) Guesty's tiers x LIMIT_FACTOR; the client is
# configured with the same generous tiers, so its limiter computes but never waits.
LIMIT_FACTOR = 10_000
GENEROUS = [f"{15 * LIMIT_FACTOR}/s", f"{120 * LIMIT_FACTOR}/min", f"{5000 * LIMIT_FACTOR}/h"]


class CachedToken:
    """A token store holding one valid token: what the client meets in steady state."""

    def __init__(self, token: str) -> None:
        self._token = StoredToken(token, "Bearer", datetime.now(UTC) + timedelta(days=1), None, 0)

    async def load_token(self, integration_id: str) -> StoredToken | None:
        return self._token

    def token_lock(self, integration_id: str) -> contextlib.AbstractAsyncContextManager[TokenTransaction]:
        raise NotImplementedError("the benchmark never refreshes")

    async def clear_token(self, integration_id: str, access_token: str) -> None:
        raise NotImplementedError("the benchmark never refreshes")

    async def record_token_request(self, integration_id: str, outcome: str) -> None:
        raise NotImplementedError("the benchmark never refreshes")

    async def restore_client_secret(self, integration_id: str, secret_version: int) -> bool:
        raise NotImplementedError("the benchmark never refreshes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def simulator(port: int) -> Any:
    proc = subprocess.Popen(
        # Limits enforced (so the partner's rate headers count down, as in production) but
        # scaled far beyond what this loop can send.
        [
            *(sys.executable, "-m", "syncd", "simulate", "--port", str(port), "--listings", "100"),
            *("--limit-factor", str(LIMIT_FACTOR), "--accounts", "guesty=1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if b"listening" not in line:
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(10)


async def cpu_per_request(call: Call, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) / n


@contextlib.asynccontextmanager
async def clients(base: str) -> AsyncIterator[tuple[Call, Call, Call]]:
    async with httpx.AsyncClient(trust_env=False) as http, PartnerTransport() as transport:
        form = {
            "grant_type": "client_credentials",
            "client_id": "guesty-acct-1",
            "client_secret": "sim-secret-1",
            "scope": "open-api",
        }
        response = await http.post(f"{base}/oauth2/token", data=form)
        response.raise_for_status()
        token = str(response.json()["access_token"])
        headers = {"Authorization": f"Bearer {token}"}
        first = await http.get(f"{base}/v1/listings", params={"limit": 1}, headers=headers)
        listing = first.json()["results"][0]["_id"]
        url = f"{base}/v1/listings/{listing}"

        async def bare() -> Any:
            response = await http.get(url, headers=headers)
            return orjson.loads(response.content)

        metrics = Metrics()
        log = syncd_logging.get_logger()
        throttle, breakers = Guards(metrics, log).for_integration(
            "guesty",
            "bench",
            LimitSpec(tiers=[parse_tier(t) for t in GENEROUS], safety_factor=0.8, max_concurrency=15),
        )
        client = PartnerClient(
            transport,
            ClientOptions(partner="guesty", integration_id="bench", base_url=f"{base}/v1"),
            throttle=throttle,
            breakers=breakers,
            metrics=metrics,
            log=log,
        )

        async def fetch(form: dict[str, str]) -> dict[str, Any]:
            raise NotImplementedError("the token is cached")

        client.auth = ClientCredentials(
            integration_id="bench",
            client_id="guesty-acct-1",
            client_secret="sim-secret-1",
            scope="open-api",
            fetch=fetch,
            store=CachedToken(token),
        )
        path = f"/listings/{listing}"

        async def stack() -> Any:
            return await client.get("/listings/{id}", path, decode=orjson.loads)

        async def wire() -> Any:
            response = await transport.handle_async_request(httpx.Request("GET", url, headers=headers))
            return orjson.loads(await response.aread())

        yield bare, stack, wire


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    with simulator(port):
        async with clients(f"http://127.0.0.1:{port}/guesty") as (bare, stack, wire):
            for call in (bare, stack, wire):  # warm up connections, caches, metric children
                await cpu_per_request(call, 200)
            bare_s: list[float] = []
            stack_s: list[float] = []
            wire_s: list[float] = []
            for _ in range(args.rounds):
                bare_s.append(await cpu_per_request(bare, args.requests))
                stack_s.append(await cpu_per_request(stack, args.requests))
                wire_s.append(await cpu_per_request(wire, args.requests))
    bare_us = statistics.median(bare_s) * 1e6
    stack_us = statistics.median(stack_s) * 1e6
    wire_us = statistics.median(wire_s) * 1e6
    return {
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "bare_httpx_cpu_us_per_request": round(bare_us, 1),
        "stack_cpu_us_per_request": round(stack_us, 1),
        "overhead_us_per_request": round(stack_us - bare_us, 1),
        "transport_cpu_us_per_request": round(wire_us, 1),
        "stack_over_transport_us_per_request": round(stack_us - wire_us, 1),
        "ratio": round(stack_us / bare_us, 3),
        "target_ratio": TARGET_RATIO,
        "pass": stack_us / bare_us <= TARGET_RATIO,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with open(os.devnull, "w") as sink:
        syncd_logging.configure("info", "json", stream=sink)
        result = anyio.run(main_async, args, backend="asyncio", backend_options={"use_uvloop": True})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
