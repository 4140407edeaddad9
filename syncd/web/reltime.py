"""Times as an operator reads them at a glance: "3 min ago", "in 12 min", "1 h 20 min"."""

from __future__ import annotations

from datetime import datetime

# Closer than this to now reads as "just now" / "due now": clocks and refreshes are not exact.
JUST_NOW_S = 5.0


def duration(seconds: float) -> str:
    """The largest unit or two that say how long: ``"45 s"``, ``"15 min"``, ``"2 h 5 min"``."""
    s = max(0.0, seconds)
    if s < 1:
        return "under 1 s"
    if s < 60:
        return f"{int(s)} s"
    if s < 3600:
        return f"{int(s // 60)} min"
    if s < 86400:
        hours, minutes = divmod(int(s // 60), 60)
        # Minutes matter next to a few hours, not next to many.
        return f"{hours} h {minutes} min" if minutes and hours < 10 else f"{hours} h"
    days, hours = divmod(int(s // 3600), 24)
    return f"{days} d {hours} h" if hours and days < 10 else f"{days} d"


def ago(then: datetime, now: datetime) -> str:
    seconds = (now - then).total_seconds()
    if abs(seconds) < JUST_NOW_S:
        return "just now"
    if seconds < 0:  # the database clock ahead of ours: say so rather than "-3 s ago"
        return f"in {duration(-seconds)}"
    return f"{duration(seconds)} ago"


def until(then: datetime, now: datetime) -> str:
    seconds = (then - now).total_seconds()
    if seconds < JUST_NOW_S:
        return "due now"
    return f"in {duration(seconds)}"
