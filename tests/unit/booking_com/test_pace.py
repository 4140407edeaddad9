"""The queue driver's pace and order on a fake clock, over httpx.MockTransport: each poll's
page awaits its commit, acknowledgements go out only from ``committed``, a poll follows an
acknowledgement by the pause, and a queue found empty is skipped (not waited for) until
``empty_poll_s`` has passed."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from syncd import errors
from syncd.config import ResourceSettings
from syncd.connectors.booking_com.connector import BookingConnector, Pace
from syncd.http.client import ClientOptions, PartnerClient
from syncd.http.throttle import Throttle
from syncd.observability.logging import get_logger
from syncd.observability.metrics import Metrics
from syncd.simulator.profiles.booking_com.data import BookingAccount, message

pytestmark = pytest.mark.anyio
BASE = "https://supply.test/hotels"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


class Partner:
    """The two queues of one account, answering as the simulator does."""

    def __init__(self, data: BookingAccount) -> None:
        self.data = data
        self.log: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        queue = "new" if request.url.path.endswith("OTA_HotelResNotif") else "modified"
        self.log.append(f"{request.method} {queue}")
        if request.method == "POST":
            ids = [int(i) for i in re.findall(rb'ResID_Value="(\d+)"', request.content)]
            self.data.acknowledge(queue, ids, error=b"<Errors>" in request.content)
            return httpx.Response(200, content=b"<OTA_HotelResNotifRS><Success/></OTA_HotelResNotifRS>")
        root = "OTA_HotelResNotifRQ" if queue == "new" else "OTA_HotelResModifyNotifRQ"
        return httpx.Response(200, content=message(root, self.data.poll(queue), self.data.clock))


def driver(partner: Partner, clock: Clock, pace: Pace) -> BookingConnector:
    options = ClientOptions(partner="booking_com", integration_id="i", base_url=BASE)
    client = PartnerClient(
        httpx.MockTransport(partner), options, throttle=Throttle(), metrics=Metrics(), log=get_logger()
    )
    return BookingConnector(client, pace, log=get_logger(), clock=clock, sleep=clock.sleep)


async def drain(connector: BookingConnector, partner: Partner) -> list[dict[str, Any]]:
    checkpoints = []
    async for page in connector.stream("reservations", None, ResourceSettings()):
        assert page.awaits_commit and page.media_type == "application/xml"
        assert partner.log[-1].startswith("GET"), "acknowledged before the commit"
        checkpoints.append(page.checkpoint)
        await connector.committed("reservations", page.checkpoint)  # what the pipeline does
    return checkpoints


async def test_polls_are_acknowledged_from_committed_and_paced() -> None:
    data = BookingAccount(seed=1, size=5, per_poll=2)
    partner, clock = Partner(data), Clock()
    connector = driver(partner, clock, Pace(empty_poll_s=20.0, ack_pause_s=5.0))
    checkpoints = await drain(connector, partner)
    assert [c["queue"] for c in checkpoints] == ["new"] * 3
    assert partner.log == ["GET new", "POST new"] * 3 + ["GET new", "GET modified"]
    assert clock.slept == [5.0, 5.0, 5.0] and data.pending() == {"new": 0, "modified": 0}

    # A run 10 s later: both queues were found empty under 20 s ago, so neither is asked.
    clock.now += 10
    data.mutate(3, seed=1)
    partner.log.clear()
    assert await drain(connector, partner) == [] and partner.log == []
    # 20 s on, they are: what changed meanwhile arrives.
    clock.now += 10
    assert await drain(connector, partner)
    assert data.pending() == {"new": 0, "modified": 0} and data.redeliveries == 0


async def test_a_run_cut_short_leaves_its_poll_unacknowledged_for_the_next_to_receive_again() -> None:
    data = BookingAccount(seed=1, size=2, per_poll=5)
    partner, clock = Partner(data), Clock()
    connector = driver(partner, clock, Pace(0.0, 0.0))
    pages = connector.stream("reservations", None, ResourceSettings())
    first = await anext(pages)
    await pages.aclose()  # the run failed before its commit: nothing may be acknowledged
    again = await drain(connector, partner)
    assert first.checkpoint["poll"] < again[0]["poll"] and data.redeliveries == 2
    assert data.acks == 2 and data.ack_posts == 1
    assert data.pending() == {"new": 0, "modified": 0}


async def test_errors_under_a_success_status_are_an_error_not_an_empty_queue() -> None:
    body = b'<OTA_HotelResNotifRQ><Errors><Error Type="6" ShortText="Hotel not active"/></Errors>'
    body += b"</OTA_HotelResNotifRQ>"
    options = ClientOptions(partner="booking_com", integration_id="i", base_url=BASE)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    client = PartnerClient(transport, options, throttle=Throttle(), metrics=Metrics(), log=get_logger())
    connector = BookingConnector(client, Pace(0.0, 0.0))
    with pytest.raises(errors.PartnerRejected, match="Hotel not active"):
        await drain(connector, Partner(BookingAccount(seed=1, size=0)))
