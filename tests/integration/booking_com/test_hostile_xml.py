"""Hostile XML from the partner, through a real run-once daemon into PostgreSQL: refused
whole, not retried (the same bytes would come again), nothing written, nothing
acknowledged, and no hang; the next clean poll syncs as usual."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from syncd.app import Daemon
from syncd.connectors.booking_com import wire
from syncd.simulator import limits
from syncd.simulator.profile import DatasetOptions
from syncd.simulator.profiles.booking_com.api import BookingProfile
from syncd.simulator.profiles.booking_com.data import BookingAccount
from syncd.simulator.server import Simulator, SimulatorServer
from tests.support import daemon_config, db_rows, integration, settings_of, simulated_partner

pytestmark = pytest.mark.anyio

PARTNER = "booking_com"
QUEUE = "/booking_com/hotels/ota/OTA_HotelResNotif"
LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>
<OTA_HotelResNotifRQ><HotelReservations><HotelReservation ResStatus="&e;"/></HotelReservations>
</OTA_HotelResNotifRQ>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]>
<OTA_HotelResNotifRQ><HotelReservations><HotelReservation ResStatus="&x;"/></HotelReservations>
</OTA_HotelResNotifRQ>"""
OVERSIZED = (
    b"<OTA_HotelResNotifRQ><HotelReservations>" + b" " * (wire.MAX_XML_BYTES + 1) + b"</HotelReservations>"
)


@pytest.mark.parametrize(
    "body", [LAUGHS, XXE, OVERSIZED], ids=["billion-laughs", "external-entity", "oversized"]
)
async def test_hostile_xml_is_refused_nothing_written_and_nothing_hangs(
    body: bytes, database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(limit_settings=limits.LimitSettings(enabled=False))
    profile = sim.profile(PARTNER)
    assert isinstance(profile, BookingProfile)
    account_id, secret = profile.credentials(1)
    data: BookingAccount = sim.add_account(
        PARTNER, account_id, secret, profile.dataset(2, 20, DatasetOptions())
    )
    profile.hostile_body = body
    async with SimulatorServer(sim) as server:
        partner = simulated_partner(server, PARTNER, queue_empty_poll_s=0, queue_ack_pause_s=0)
        pinned = integration("h", PARTNER, profile.config_credentials(account_id, secret), ["reservations"])
        document = daemon_config(database_url, {PARTNER: partner}, [pinned], state_dir=tmp_path)
        with anyio.fail_after(30):
            await Daemon(settings_of(document), once=True).run()
        assert sim.request_log.count(path=QUEUE) == 1, "a hostile body was asked for again"
        rows = await db_rows(database_url, "SELECT count(*) FROM reservations")
        letters = await db_rows(database_url, "SELECT count(*) FROM dead_letters")
        assert rows[0][0] == 0 and letters[0][0] == 0
        failed = await db_rows(database_url, "SELECT last_error FROM sync_state WHERE integration_id = 'h'")
        assert "XML" in (failed[0][0] or ""), failed
        assert data.ack_posts == 0 and data.pending()["new"] == 20

        profile.hostile_body = None  # the partner mends: the queue drains as usual
        with anyio.fail_after(30):
            await Daemon(settings_of(document), once=True).run()
    rows = await db_rows(database_url, "SELECT count(*) FROM reservations")
    assert rows[0][0] == 20 and data.pending()["new"] == 0
