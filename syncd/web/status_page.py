"""/status for a browser: the JSON body's facts as one self-refreshing page.

Server-rendered, inline CSS, no scripts and no external assets, so it works behind any
proxy and on a phone. Partners first (calls against budget, success, p95, 429s, 5xx,
breaker), then one card per integration, worst first, with each resource's verdict and
reason. Colour is never the only signal: every badge carries a symbol and a word.
Every value is escaped; the page is built from the status dict only, which holds no
secret (errors are redacted before they are stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any

from syncd.web import health, reltime

REFRESH_S = 10
NONE = "\N{EN DASH}"  # a value that is not known (yet)
# Partner figures: a success rate below GOOD is amber, below health.PARTNER_SUCCESS_RATE red.
SUCCESS_GOOD = 0.99
BADGES = {
    "healthy": "✓ healthy",
    "degraded": "▲ degraded",
    "down": "✕ down",
    "idle": f"{NONE} idle",
}
_STATES = ("down", "degraded", "idle", "healthy")  # worst first, as the summary lists them

_STYLE = """
:root{--ok:#116329;--ok-bg:#dafbe1;--ok-line:#2da44e;--warn:#7d4e00;--warn-bg:#fff8c5;
--warn-line:#d4a72c;--bad:#a40e26;--bad-bg:#ffebe9;--bad-line:#cf222e;--idle:#424a53;
--idle-bg:#eaeef2;--idle-line:#8c959f;--muted:#57606a;--line:#d0d7de}
*{box-sizing:border-box}
body{margin:0;padding:12px;background:#f6f8fa;color:#1f2328;
font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:1180px;margin:0 auto}
h1{font-size:1.3rem;margin:0}
h2{font-size:.8rem;letter-spacing:.06em;text-transform:uppercase;color:var(--muted);margin:18px 0 8px}
h2 small{text-transform:none;letter-spacing:0;font-weight:400}
.sub{color:var(--muted);font-size:.85rem;margin:2px 0 0}
.summary{display:flex;flex-wrap:wrap;gap:6px;margin:10px 0 0}
.summary .badge{font-size:.9rem;padding:3px 10px}
.banner{background:var(--warn-bg);border:1px solid var(--warn-line);color:var(--warn);
border-radius:8px;padding:8px 12px;margin:12px 0 0;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-left:6px solid var(--idle-line);
border-radius:8px;padding:10px 12px;min-width:0}
.card.healthy{border-left-color:var(--ok-line)}.card.degraded{border-left-color:var(--warn-line)}
.card.down{border-left-color:var(--bad-line)}
.head{display:flex;flex-wrap:wrap;align-items:center;gap:6px 8px}
.head h3{font-size:1.05rem;margin:0;overflow-wrap:anywhere}
.head .partner{color:var(--muted);font-size:.85rem}
.head .badge:first-of-type{margin-left:auto}
.badge{display:inline-block;border:1px solid;border-radius:999px;padding:1px 8px;
font-size:.78rem;font-weight:700;white-space:nowrap}
.badge.healthy{color:var(--ok);background:var(--ok-bg);border-color:var(--ok-line)}
.badge.degraded{color:var(--warn);background:var(--warn-bg);border-color:var(--warn-line)}
.badge.down{color:var(--bad);background:var(--bad-bg);border-color:var(--bad-line)}
.badge.idle{color:var(--idle);background:var(--idle-bg);border-color:var(--idle-line)}
.reason{margin:4px 0 0;font-weight:600;overflow-wrap:anywhere}
.reason.degraded{color:var(--warn)}.reason.down{color:var(--bad)}
.reason.idle{color:var(--muted);font-weight:400}
.res{border-top:1px solid var(--line);margin-top:8px;padding-top:8px}
.res:first-of-type{border-top:0;margin-top:4px;padding-top:0}
.res .line{display:flex;align-items:center;gap:8px}
.res .line b{font-size:.95rem}
.facts{display:flex;flex-wrap:wrap;gap:2px 14px;margin:4px 0 0;padding:0;list-style:none;font-size:.85rem}
.facts span{color:var(--muted)}
.facts .warn{color:var(--warn);font-weight:700}.facts .bad{color:var(--bad);font-weight:700}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:8px;margin:10px 0 0}
.cards.wide{grid-template-columns:repeat(auto-fill,minmax(min(100%,560px),1fr))}
.fig{background:#f6f8fa;border-radius:6px;padding:6px 8px;min-width:0}
.fig b{display:block;font-size:1.25rem;line-height:1.2}
.fig span{color:var(--muted);font-size:.78rem}
.fig.warn{background:var(--warn-bg)}.fig.warn b{color:var(--warn)}
.fig.bad{background:var(--bad-bg)}.fig.bad b{color:var(--bad)}
.fig.wide{grid-column:1/-1}
.bar{height:8px;background:var(--idle-bg);border-radius:4px;overflow:hidden;margin:4px 0 2px}
.bar i{display:block;height:100%;background:#0969da}
footer{color:var(--muted);font-size:.8rem;margin:18px 0 6px}
footer p{margin:4px 0}
@media (max-width:600px){body{padding:8px}.cards{grid-template-columns:1fr}
.fig b{font-size:1.1rem}}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _known(state: Any) -> str:
    """A verdict's state as one of the page's classes (anything else reads as idle)."""
    return state if isinstance(state, str) and state in BADGES else "idle"


def _badge(state: str, text: str | None = None) -> str:
    known = _known(state)
    return f'<span class="badge {known}">{_e(text or BADGES[known])}</span>'


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _when(value: Any, now: datetime | None, relative: str = "ago", never: str = "never") -> str:
    """A relative time with the absolute one in its title attribute."""
    at = _parse(value)
    if at is None or now is None:
        return _e(value) if value else _e(never)
    text = reltime.ago(at, now) if relative == "ago" else reltime.until(at, now)
    return f'<time datetime="{_e(value)}" title="{_e(value)}">{_e(text)}</time>'


def _number(value: Any, digits: int = 0) -> str:
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return NONE


# --- partners ------------------------------------------------------------------------


def _breaker_badge(breaker: Mapping[str, Any]) -> str:
    state = str(breaker.get("state", "closed"))
    not_closed = len(breaker.get("integrations") or {})
    if state == "closed" and not_closed:
        return _badge("degraded", f"{not_closed} integration breaker{'s' if not_closed != 1 else ''} open")
    if state == "closed":
        return _badge("healthy", "breakers closed")
    return _badge("degraded" if state == "half_open" else "down", "breaker " + state.replace("_", "-"))


def _latency(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return NONE
    return f"{ms:,.0f} ms" if ms < 10_000 else f"{ms / 1000:,.1f} s"


def _partner(name: str, p: Mapping[str, Any]) -> str:
    state = _known((p.get("health") or {}).get("state"))
    reason = str((p.get("health") or {}).get("reason", ""))
    per_min, budget = p.get("calls_per_min"), p.get("budget_per_min")
    if isinstance(budget, int | float) and budget > 0 and isinstance(per_min, int | float):
        share = min(100.0, 100.0 * per_min / budget)
        budget_text = f"of {_number(budget)} budget"
        bar = f'<div class="bar" title="{share:.0f} % of the budget"><i style="width:{share:.1f}%"></i></div>'
    else:
        budget_text, bar = "no rate limit configured", ""
    rate = p.get("success_rate")
    if not isinstance(rate, int | float):
        success, s_class = NONE, ""
    else:
        success = f"{rate * 100:.1f} %"
        s_class = "" if rate >= SUCCESS_GOOD else "warn" if rate >= health.PARTNER_SUCCESS_RATE else "bad"

    def fig(value: str, label: str, css: str = "", hint: str = "") -> str:
        title = f' title="{_e(hint)}"' if hint else ""
        return f'<div class="fig {css}"{title}><b>{_e(value)}</b><span>{_e(label)}</span></div>'

    def count(key: str, label: str, hint: str) -> str:
        n = p.get(key)
        return fig(_number(n), label, "warn" if isinstance(n, int) and n > 0 else "", hint)

    return (
        f'<article class="card {state}" id="partner-{_e(name)}"><div class="head">'
        f"<h3>{_e(name)}</h3>{_badge(state)}{_breaker_badge(p.get('breaker') or {})}</div>"
        f'<p class="reason {state}">{_e(reason)}</p><div class="figures">'
        f'<div class="fig wide"><b>{_e(_number(per_min, 1))} <small>calls/min</small></b>'
        f"{bar}<span>{_e(budget_text)} · peak {_e(_number(p.get('peak_calls_per_min')))}/min · "
        f"{_e(_number(p.get('calls')))} calls</span></div>"
        + fig(success, "success", s_class, "calls answered and decoded, retries included")
        + fig(_latency(p.get("p95_ms")), "p95 latency", "", "95 % of calls took at most this long")
        + count("rate_limited", "429s", "calls the partner refused as over its rate limit")
        + count("server_errors", "5xx", "calls the partner failed with a server error")
        + count("no_answer", "no answer", "timeouts, resets and refused connections")
        + "</div></article>"
    )


# --- integrations --------------------------------------------------------------------


def _resource(sync: Mapping[str, Any], run: Mapping[str, Any] | None, now: datetime | None) -> str:
    verdict = sync.get("health") or {}
    state = _known(verdict.get("state"))
    failures = sync.get("consecutive_failures") or 0
    letters = sync.get("dead_letters") or 0
    outcome = sync.get("last_outcome")
    facts = []
    if sync.get("running"):
        progress = ""
        if run:
            progress = f": {_number(run.get('pages'))} pages, {_number(run.get('records'))} records"
        facts.append(f"<li><span>syncing now</span>{_e(progress)}</li>")
    if outcome and outcome != "ok":
        facts.append(
            f"<li><span>last run</span> {_e(outcome)} {_when(sync.get('last_finished_at'), now)}</li>"
        )
    facts.append(f"<li><span>last success</span> {_when(sync.get('last_success_at'), now)}</li>")
    if not sync.get("running"):
        next_run = _when(sync.get("next_due_at"), now, relative="until", never="not scheduled")
        facts.append(f"<li><span>next run</span> {next_run}</li>")
    bad = "bad" if isinstance(failures, int) and failures >= health.DOWN_AFTER_FAILURES else "warn"
    facts.append(
        f'<li><span>failures in a row</span> <b class="{bad if failures else ""}">{_e(failures)}</b></li>'
    )
    facts.append(
        f'<li><span>dead letters</span> <b class="{"warn" if letters else ""}">{_e(letters)}</b></li>'
    )
    # A healthy sync's reason is its last success, already among the facts.
    reason = (
        "" if state == "healthy" else f'<p class="reason {_e(state)}">{_e(verdict.get("reason", ""))}</p>'
    )
    return (
        f'<div class="res {_e(state)}" id="sync-{_e(sync.get("integration_id"))}-{_e(sync.get("resource"))}">'
        f'<div class="line">{_badge(state)}<b>{_e(sync.get("resource"))}</b></div>'
        + reason
        + f'<ul class="facts">{"".join(facts)}</ul></div>'
    )


def _state_of(sync: Mapping[str, Any]) -> str:
    return _known((sync.get("health") or {}).get("state"))


def _worst(states: list[str]) -> str:
    return max(states, key=lambda s: health.SEVERITY[health.Health(s)], default="idle")


def _integrations(status: Mapping[str, Any], now: datetime | None) -> str:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for sync in status.get("syncs", []):
        groups.setdefault(str(sync.get("integration_id")), []).append(sync)
    if not groups:
        return "<p>No syncs registered.</p>"
    runs = status.get("runs") or {}
    versions = status.get("api_versions") or {}
    cards = []
    for ident, syncs in groups.items():
        worst = _worst([_state_of(s) for s in syncs])
        body = "".join(
            _resource(s, runs.get(f"{ident}/{s.get('resource')}"), now)
            for s in sorted(
                syncs, key=lambda s: (-health.SEVERITY[health.Health(_state_of(s))], str(s.get("resource")))
            )
        )
        cards.append(
            (
                -health.SEVERITY[health.Health(worst)],
                ident,
                f'<article class="card {worst}" id="integration-{_e(ident)}"><div class="head">'
                f'<h3>{_e(ident)}</h3><span class="partner">{_e(syncs[0].get("partner", ""))}'
                f"{_api_version(versions.get(ident))}</span>"
                f"{_badge(worst)}</div>{body}</article>",
            )
        )
    return '<div class="cards">' + "".join(card for *_, card in sorted(cards)) + "</div>"


def _api_version(version: Any) -> str:
    return f' <span class="api-version">API {_e(version)}</span>' if version else ""


# --- the task queue ------------------------------------------------------------------


def _queue(queue: Mapping[str, Any] | None) -> str:
    """Due tasks per priority with the oldest one's wait, the running ones, and a stall."""
    if not queue:
        return ""

    def fig(value: str, label: str, css: str = "", hint: str = "") -> str:
        title = f' title="{_e(hint)}"' if hint else ""
        return f'<div class="fig {css}"{title}><b>{_e(value)}</b><span>{_e(label)}</span></div>'

    figures = []
    for band in queue.get("priorities") or []:
        due, oldest = band.get("due") or 0, band.get("oldest_s") or 0.0
        wait = f" · oldest {reltime.duration(float(oldest))}" if due else ""
        figures.append(
            fig(_number(due), f"{band.get('priority')} due{wait}", "", "tasks that could start now")
        )
    figures.append(fig(_number(queue.get("running")), "running", "", "tasks this process runs now"))
    stalled, limit = queue.get("claim_stalled_s") or 0.0, queue.get("claim_stall_s")
    if isinstance(stalled, int | float) and stalled > 0:
        css = "bad" if isinstance(limit, int | float) and stalled > limit else "warn"
        figures.append(
            fig(
                reltime.duration(float(stalled)),
                "none claimed",
                css,
                "tasks due and none claimed for this long",
            )
        )
    return (
        '<section id="queue"><h2>Task queue</h2><div class="card"><div class="figures">'
        + "".join(figures)
        + "</div></div></section>"
    )


# --- lock codes ----------------------------------------------------------------------


def _access_codes(entry: Mapping[str, Any] | None) -> str:
    """Access codes per lock integration by state, and the latest refused ones (reservation,
    device, reason: never a code)."""
    if not entry:
        return ""
    cards = []
    for lock, info in (entry.get("integrations") or {}).items():
        states = info.get("states") or {}
        figures = "".join(
            f'<div class="fig {"bad" if state == "failed" and n else ""}"><b>{_e(_number(n))}</b>'
            f"<span>{_e(state)}</span></div>"
            for state, n in states.items()
        )
        cards.append(
            f'<div class="card"><h3>{_e(lock)} <small>follows {_e(info.get("follows"))}</small></h3>'
            f'<div class="figures">{figures}</div></div>'
        )
    failures = entry.get("failures") or []
    rows = "".join(
        f"<tr><td>{_e(f.get('integration'))}</td><td>{_e(f.get('reservation'))}</td>"
        f"<td>{_e(f.get('device'))}</td><td>{_e(f.get('reason'))}</td></tr>"
        for f in failures
    )
    table = (
        "<table><thead><tr><th>integration</th><th>reservation</th><th>device</th><th>why</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    head = '<section id="access-codes"><h2>Lock codes</h2>'
    return f'{head}<div class="cards">{"".join(cards)}</div>{table}</section>'


# --- the page ------------------------------------------------------------------------


def render(status: Mapping[str, Any]) -> str:
    now = _parse(status.get("now"))
    syncs = status.get("syncs", [])
    counts = dict.fromkeys(_STATES, 0)
    for sync in syncs:
        counts[_state_of(sync)] += 1
    summary = "".join(
        _badge(state, f"{BADGES[state].split()[0]} {n} {state}") for state, n in counts.items() if n
    )
    shard = status.get("shard", {})
    partners = status.get("partners") or {}
    window = next((p.get("window_s") for p in partners.values()), None)
    window_text = f"last {reltime.duration(float(window))}" if isinstance(window, int | float) else ""
    worst = next((s for s in _STATES if counts[s] and s != "healthy"), None)
    title = f"{counts[worst]} {worst} · syncd" if worst in ("down", "degraded") else "syncd"
    as_of = (
        f'<time datetime="{_e(status["now"])}" title="{_e(status["now"])}">'
        f"{_e(now.strftime('%H:%M:%S %Z'))}</time>"
        if now is not None
        else NONE
    )
    draining = (
        '<p class="banner">Draining: this process is not starting new syncs.</p>'
        if status.get("draining")
        else ""
    )
    partner_cards = "".join(_partner(str(name), p) for name, p in sorted(partners.items()))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body><main>"
        f"<header><h1>syncd status</h1>"
        f'<p class="sub">shard {_e(shard.get("index", 0))}/{_e(shard.get("count", 1))} · '
        f"{_e(status.get('integrations', 0))} integration(s) · as of {as_of} · "
        f"refreshes every {REFRESH_S} s</p>"
        f'<div class="summary">{summary}</div></header>{draining}'
        f"<section><h2>Partners <small>{_e(window_text)}</small></h2>"
        + (
            f'<div class="cards wide">{partner_cards}</div>'
            if partner_cards
            else "<p>No partner on this shard.</p>"
        )
        + "</section>"
        + _queue(status.get("queue"))
        + _access_codes(status.get("access_codes"))
        + "<section><h2>Integrations</h2>"
        + _integrations(status, now)
        + "</section>"
        + _legend()
        + "</main></body></html>"
    )


def _legend() -> str:
    return (
        "<footer>"
        f"<p>{_badge('down')} auth failed, a breaker open, {health.DOWN_AFTER_FAILURES}+ failures "
        f"in a row, or no success for {health.DOWN_STALE_INTERVALS:g} intervals.</p>"
        f"<p>{_badge('degraded')} a run failed, a breaker half-open, open dead letters, or no "
        f"success for {health.STALE_INTERVALS:g} intervals.</p>"
        "<p>The same facts as JSON: <code>curl http://HOST:PORT/status</code>.</p>"
        "</footer>"
    )
