"""A partner gone hostile, one response at a time: each is refused with an error that says
what it was, the client's memory stays within twice its body cap, and the event loop is
never held for more than 100 ms. The partner runs in its own process
(``hostile_server``), so the memory measured here is the client's alone."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import orjson
import pytest

from syncd import errors
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.throttle import Throttle
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from tests.integration.http.scripted import hostile_partner, partner_transport

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("both_network_backends")]


CAP = 16 << 20  # max_body_bytes of these tests
MAX_STALL_S = 0.1


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    with hostile_partner() as (url, _):
        yield url


def _reset_peak_rss() -> int:
    """Resets the kernel's high-water mark of this process's RSS to its current RSS (KiB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@dataclass
class Watch:
    rss_growth_bytes: int = 0
    longest_step_cpu_s: float = 0.0


@asynccontextmanager
async def watched() -> AsyncIterator[Watch]:
    """Peak RSS growth (the kernel's high-water mark, reset at the start) and the longest
    stretch of the loop's own CPU time between two ticks of a 5 ms ticker. CPU time, not
    wall time: a busy CI machine can deschedule the whole process, which is no stall of
    ours; a synchronous step that holds the loop shows as CPU either way."""
    watch = Watch()
    baseline = _reset_peak_rss()

    async def tick() -> None:
        last = time.thread_time()
        while True:
            await anyio.sleep(0.005)
            now = time.thread_time()
            watch.longest_step_cpu_s = max(watch.longest_step_cpu_s, now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        yield watch
        tg.cancel_scope.cancel()
    watch.rss_growth_bytes = (_status_kb("VmHWM") - baseline) * 1024


async def call(url: str, path: str, **options: float) -> tuple[errors.PartnerError, Watch, Metrics]:
    metrics = Metrics()
    settings = {"max_attempts": 1, "max_body_bytes": CAP, **options}
    client_options = ClientOptions(partner="p", integration_id="t", base_url=url, **settings)  # type: ignore[arg-type]
    async with partner_transport() as transport, watched() as watch:
        client = PartnerClient(
            transport, client_options, throttle=Throttle(), metrics=metrics, log=get_logger()
        )
        with pytest.raises(errors.PartnerError) as caught:
            await client.get(path, decode=orjson.loads)
    return caught.value, watch, metrics


def assert_bounded(watch: Watch) -> None:
    assert watch.rss_growth_bytes < 2 * CAP, f"RSS grew {watch.rss_growth_bytes / 2**20:.1f} MiB"
    assert watch.longest_step_cpu_s < MAX_STALL_S, (
        f"the loop was held {watch.longest_step_cpu_s * 1000:.0f} ms"
    )


async def test_a_flood_of_tiny_headers_is_refused(hostile_url: str) -> None:
    failure, watch, metrics = await call(hostile_url, "/header-flood")
    assert isinstance(failure, errors.PartnerUnavailable)
    assert "RemoteProtocolError" in str(failure) and "too long" in str(failure)
    assert metrics.api_calls.labels("p", "/header-flood", "transport_error")._value.get() == 1
    assert_bounded(watch)


async def test_one_endless_header_line_is_refused(hostile_url: str) -> None:
    failure, watch, _ = await call(hostile_url, "/long-header")
    assert isinstance(failure, errors.PartnerUnavailable)
    assert "RemoteProtocolError" in str(failure) and "too long" in str(failure)
    assert_bounded(watch)


async def test_stacked_encodings_are_refused_before_inflating(hostile_url: str) -> None:
    failure, watch, _ = await call(hostile_url, "/stacked")
    assert isinstance(failure, errors.PartnerRejected)
    assert "stacked encodings 'gzip, gzip'" in str(failure)
    assert_bounded(watch)


async def test_a_reset_mid_body_is_an_error_not_a_short_success(hostile_url: str) -> None:
    failure, watch, metrics = await call(hostile_url, "/reset")
    assert isinstance(failure, errors.PartnerUnavailable)
    assert "ReadError" in str(failure)
    assert metrics.api_calls.labels("p", "/reset", "transport_error")._value.get() == 1
    assert_bounded(watch)


async def test_a_gigabyte_gzip_bomb_is_refused_at_the_cap(hostile_url: str) -> None:
    failure, watch, _ = await call(hostile_url, "/bomb")
    assert isinstance(failure, errors.PartnerRejected)
    assert f"inflates past the {CAP}-byte cap" in str(failure)
    assert_bounded(watch)


async def test_a_trickling_body_is_cut_at_the_request_deadline(hostile_url: str) -> None:
    """One byte every 0.2 s never trips the 30 s read timeout; the request's deadline
    (2 s here) ends the exchange, retries included."""
    started = time.monotonic()
    failure, watch, metrics = await call(
        hostile_url, "/trickle", request_deadline_s=2.0, read_timeout_s=30.0, max_attempts=3
    )
    elapsed = time.monotonic() - started
    assert isinstance(failure, errors.PartnerUnavailable)
    assert "within request_deadline_s (2 s)" in str(failure)
    assert 1.0 <= elapsed <= 3.0
    assert metrics.api_calls.labels("p", "/trickle", "timeout")._value.get() == 1
    assert_bounded(watch)
