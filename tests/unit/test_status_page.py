"""The /status HTML page: every value escaped, failing syncs marked."""

from __future__ import annotations

from syncd.web.status_page import render

FAILING = {
    "integration_id": "acme",
    "resource": "properties",
    "status": "auth_failed",
    "last_outcome": "failed",
    "last_error": "<script>alert(1)</script>",
    "dead_letters": 2,
}
HEALTHY = {"integration_id": "beta", "resource": "properties", "status": "active", "last_outcome": "ok"}


def test_values_are_escaped_and_failures_marked() -> None:
    page = render(
        {
            "shard": {"index": 1, "count": 4},
            "integrations": 1,
            "draining": True,
            "syncs": [FAILING, HEALTHY],
            "runs": {},
        }
    )
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<span class="bad">auth_failed</span>' in page
    assert "<td>active</td>" in page  # a healthy sync is not marked
    assert "syncd shard 1/4" in page and "Draining" in page
    assert "No run yet." in page
