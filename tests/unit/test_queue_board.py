"""The task queue on /status: due tasks and the oldest wait per priority band, the running
ones and a claim stall, in the JSON and on the page; and the admin's small pure parts."""

from __future__ import annotations

import re

from syncd import admin, cli
from syncd.store.tasks import Depth, Priority, priority_name
from syncd.web import board
from syncd.web.status_page import render
from tests.unit.test_status_page import Parsed


def test_every_band_is_reported_and_odd_priorities_join_the_band_below() -> None:
    depth = [Depth(0, 1, 2.0), Depth(20, 40, 3605.04), Depth(25, 2, 7200.0)]
    queue = board.queue_entry(depth, running=8, stalled_s=12.34, stall_limit_s=600.0)
    assert queue == {
        "due": 43,
        "oldest_s": 7200.0,
        "running": 8,
        "claim_stalled_s": 12.3,
        "claim_stall_s": 600.0,
        "priorities": [
            {"priority": "user", "due": 1, "oldest_s": 2.0},
            {"priority": "webhook", "due": 0, "oldest_s": 0.0},
            {"priority": "scheduled", "due": 42, "oldest_s": 7200.0},
            {"priority": "low", "due": 0, "oldest_s": 0.0},
        ],
    }
    assert [priority_name(p) for p in (-1, 0, 9, 10, 20, 30, 99)] == [
        "user", "user", "user", "webhook", "scheduled", "low", "low",
    ]  # fmt: skip
    assert board.queue_entry([], 0, 0.0, 600.0)["priorities"] == [
        {"priority": p.name.lower(), "due": 0, "oldest_s": 0.0} for p in Priority
    ]


def page_with(queue: dict[str, object] | None) -> str:
    return render({"now": "2026-12-06T06:00:00+00:00", "syncs": [], "queue": queue})


def test_the_page_shows_the_queue_per_priority_and_a_stall_past_its_limit() -> None:
    depth = [Depth(0, 3, 125.0), Depth(20, 40, 3605.0)]
    page = page_with(board.queue_entry(depth, running=2, stalled_s=900.0, stall_limit_s=600.0))
    section = re.search(r'<section id="queue">.*?</section>', page)
    assert section is not None
    text = re.sub(r"<[^>]+>", " ", section[0])
    assert re.search(r"3\s+user due · oldest 2 min", text)
    assert re.search(r"0\s+webhook due\s", text)  # no wait shown when nothing is due
    assert re.search(r"40\s+scheduled due · oldest 1 h", text)
    assert re.search(r"2\s+running", text)
    assert '<div class="fig bad" title="tasks due and none claimed for this long"><b>15 min</b>' in page
    Parsed(page)  # well-formed enough for the page's own parser

    calm = page_with(board.queue_entry([], running=0, stalled_s=0.0, stall_limit_s=600.0))
    assert "none claimed" not in calm and '<section id="queue">' in calm
    short = page_with(board.queue_entry(depth, running=1, stalled_s=30.0, stall_limit_s=600.0))
    assert '<div class="fig warn" title="tasks due and none claimed for this long"><b>30 s</b>' in short
    assert '<section id="queue">' not in page_with(None)  # a status without an engine


def test_the_cli_and_the_http_routes_accept_the_same_task_states() -> None:
    from syncd.web import admin as web_admin

    assert cli.TASK_STATES == admin.TASK_STATES
    field = web_admin.TasksQuery.model_fields["state"]
    assert str(field.annotation).count("'") == 2 * len(admin.TASK_STATES)
    assert all(f"'{state}'" in str(field.annotation) for state in admin.TASK_STATES)


def test_json_lines_keep_timestamps_whole_and_anything_else_as_text() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    at = datetime(2026, 12, 6, 6, 0, 0, 123456, tzinfo=UTC)
    assert admin.dumps({"at": at, "n": Decimal("1.5"), "ids": ["a"]}) == (
        '{"at": "2026-12-06T06:00:00.123456+00:00", "n": "1.5", "ids": ["a"]}'
    )
