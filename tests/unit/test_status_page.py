"""The /status HTML page: every value escaped wherever it lands, verdicts with words and
colour, relative times with the absolute one in a title, worst integrations first."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

from syncd.http.breaker import State
from syncd.http.guards import PARTNER_SCOPE, BreakerView
from syncd.observability.callstats import CallSummary
from syncd.web import board
from syncd.web.status_page import REFRESH_S, render
from tests.unit.test_health import NOW, row

HOSTILE = "\"'><img src=x onerror=alert(1)><script>alert(1)</script>&amp;"
# What the page itself is made of; anything else came from a value that was not escaped.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "p",
    "div", "span", "section", "article", "ul", "li", "b", "i", "small", "time", "footer", "code",
}  # fmt: skip
PAGE_ATTRIBUTES = {
    "charset",
    "name",
    "content",
    "http-equiv",
    "lang",
    "class",
    "id",
    "title",
    "datetime",
    "style",
}


class Parsed(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.titles: list[str] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.titles.extend(value for name, value in attrs if name == "title" and value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def sync_row(integration: str, resource: str, **changes: Any) -> dict[str, Any]:
    """test_health's sync row, as ``sync_status`` returns it to the page."""
    return row(
        integration_id=integration,
        resource=resource,
        interval_s=900.0,
        next_due_at=NOW + timedelta(minutes=12),
        last_started_at=NOW - timedelta(minutes=3, seconds=20),
        **changes,
    )


def document(rows: list[dict[str, Any]], breakers: list[BreakerView] | None = None) -> dict[str, Any]:
    breakers = breakers or []
    calls = CallSummary(
        300.0, calls=412, ok=398, rate_limited=1, server_errors=2, peak_per_min=96, p95_s=0.231
    )
    return {
        "now": NOW.isoformat(),
        "syncs": [board.sync_entry(r, breakers, NOW) for r in rows],
        "partners": {"p": board.partner_entry(calls, 300.0, 200 / 60, breakers)},
        "shard": {"index": 0, "count": 1},
        "integrations": len({r["integration_id"] for r in rows}),
        "draining": False,
        "runs": {},
    }


def test_hostile_values_are_escaped_wherever_they_land() -> None:
    doc = document([sync_row("acme", "properties"), sync_row("beach", "properties")])
    hostile = doc["syncs"][1]
    for key in hostile:
        hostile[key] = HOSTILE
    hostile["running"] = True
    hostile["health"] = {"state": HOSTILE, "reason": HOSTILE}
    doc["runs"] = {f"{HOSTILE}/{HOSTILE}": {"pages": HOSTILE, "records": HOSTILE}}
    doc["partners"][HOSTILE] = dict.fromkeys(doc["partners"]["p"], HOSTILE) | {
        "health": {"state": HOSTILE, "reason": HOSTILE},
        "breaker": {"state": HOSTILE, "retry_in_s": 3, "integrations": {HOSTILE: {}}},
    }
    doc["shard"] = {"index": HOSTILE, "count": HOSTILE}
    doc["integrations"] = HOSTILE
    doc["api_versions"] = {"acme": HOSTILE, HOSTILE: HOSTILE}
    doc["now"] = HOSTILE
    page = render(doc)
    parsed = Parsed(page)
    assert parsed.tags <= PAGE_TAGS, parsed.tags - PAGE_TAGS
    assert parsed.attributes <= PAGE_ATTRIBUTES, parsed.attributes - PAGE_ATTRIBUTES
    assert "<script" not in page and "<img" not in page
    # Shown as text wherever it came in (the browser decodes the escapes back, once).
    assert "".join(parsed.text).count(HOSTILE) >= 10


def test_verdicts_read_with_words_colour_and_relative_times() -> None:
    rows = [
        sync_row("acme", "properties"),
        sync_row("beach", "properties", dead_letters=4),
        sync_row(
            "cove",
            "properties",
            status="auth_failed",
            status_reason="401 authentication failed",
            last_outcome="failed",
            consecutive_failures=1,
            last_success_at=None,
            last_error="401 authentication failed",
        ),
    ]
    breakers = [
        BreakerView("p", PARTNER_SCOPE, State.CLOSED, 0.0),
        BreakerView("p", "cove", State.OPEN, 21.0),
    ]
    page = render(document(rows, breakers))
    parsed = Parsed(page)
    text = " ".join(" ".join(parsed.text).split())
    assert '<meta name="viewport"' in page and f'http-equiv="refresh" content="{REFRESH_S}"' in page
    assert "✕ down" in text and "▲ degraded" in text and "✓ healthy" in text
    assert (
        "auth failed: 401 authentication failed; breaker open: next try in 21 s; 1 failure in a row" in text
    )
    assert "4 open dead letters" in text
    # Worst first: the down card, then the degraded one, then the healthy one.
    assert page.index('id="integration-cove"') < page.index('id="integration-beach"')
    assert page.index('id="integration-beach"') < page.index('id="integration-acme"')
    assert 'class="card down" id="integration-cove"' in page
    # "3 min ago" with the ISO time in its title; the next run in the future.
    assert "last success 3 min ago" in text and "next run in 12 min" in text
    assert (NOW - timedelta(minutes=3)).isoformat() in parsed.titles
    # The partner panel: calls against budget, success, p95, 429s, 5xx, breakers.
    assert "82.4 calls/min" in text and "of 200 budget · peak 96/min · 412 calls" in text
    assert "96.6 % success" in text and "231 ms p95 latency" in text
    assert "1 429s" in text and "2 5xx" in text and "0 no answer" in text
    assert "1 integration breaker open" in text and "last 5 min" in text
    assert "✕ 1 down" in text and "▲ 1 degraded" in text and "✓ 1 healthy" in text
    assert "<title>1 down · syncd</title>" in page


def test_draining_no_partner_and_no_syncs() -> None:
    page = render({"shard": {"index": 1, "count": 4}, "integrations": 0, "draining": True, "syncs": []})
    assert "shard 1/4" in page and "Draining" in page
    assert "No syncs registered." in page and "No partner on this shard." in page
    assert "<title>syncd</title>" in page
