"""/status for a browser: the same facts as the JSON body, as one self-refreshing HTML page.

No template engine and no scripts: every value is escaped, and the page is built from the
status dict only, which holds no secret (errors are redacted before they are stored).
"""

from __future__ import annotations

from html import escape
from typing import Any

REFRESH_S = 5
SYNC_COLUMNS = (
    ("integration_id", "integration"), ("resource", "resource"), ("status", "status"),
    ("last_outcome", "last run"), ("last_success_at", "last success"), ("next_due_at", "next run"),
    ("consecutive_failures", "failures in a row"), ("dead_letters", "dead letters"),
    ("last_error", "last error"),
)  # fmt: skip
RUN_COLUMNS = ("run", "pages", "records", "inserted", "updated")

_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f4f4f4}.bad{color:#b00020;font-weight:600}"
)


def _cell(value: Any) -> str:
    return "&ndash;" if value is None else escape(str(value))


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(status: dict[str, Any]) -> str:
    syncs = []
    for sync in status.get("syncs", []):
        row = [_cell(sync.get(key)) for key, _ in SYNC_COLUMNS]
        if sync.get("status") != "active" or sync.get("last_outcome") not in (None, "ok"):
            row[2] = f'<span class="bad">{row[2]}</span>'
            row[3] = f'<span class="bad">{row[3]}</span>'
        syncs.append(row)
    runs = [
        [_cell(name), *(_cell(run.get(k)) for k in RUN_COLUMNS[1:])]
        for name, run in status.get("runs", {}).items()
    ]
    shard = status.get("shard", {})
    title = f"syncd shard {shard.get('index', 0)}/{shard.get('count', 1)}"
    draining = "<p class='bad'>Draining: not starting new syncs.</p>" if status.get("draining") else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<meta http-equiv='refresh' content='{REFRESH_S}'><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{_cell(status.get('integrations'))} integration(s). "
        f"This page refreshes every {REFRESH_S} s. The same data as JSON: "
        "<code>curl /status</code>.</p>"
        f"{draining}<h2>Syncs</h2>"
        + _table([label for _, label in SYNC_COLUMNS], syncs, "No syncs registered.")
        + "<h2>Runs of this process</h2>"
        + _table(list(RUN_COLUMNS), runs, "No run yet.")
        + "</body></html>"
    )
