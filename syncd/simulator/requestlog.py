"""Every partner request the simulator answered: exact counters plus a bounded detail ring.

Counters by (account, method, path template, status) are kept for the whole life of the
simulator (their cardinality is tiny); the detailed entries live in a ring buffer so a
long benchmark does not grow memory. Tests use both: "the restarted daemon resumed from
its checkpoint" reads the ``filters`` of an entry, "metrics equal what the partner saw"
compares counters.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_CAPACITY = 200_000
# Handlers put the resolved account here; the middleware reads it after the response.
ACCOUNT_SCOPE_KEY = "syncd.simulator.account"
CONTROL_PREFIX = "/_sim/"

CounterKey = tuple[str | None, str, str, int]


@dataclass(frozen=True, slots=True)
class RequestEntry:
    """One request; the query string is kept raw (parsed on demand) to keep the ring small."""

    time: float
    account: str | None
    method: str
    path: str
    raw_query: str
    status: int

    @property
    def query(self) -> tuple[tuple[str, str], ...]:
        return tuple(parse_qsl(self.raw_query, keep_blank_values=True))

    def param(self, name: str) -> str | None:
        """Last value of a query parameter, as the API reads it."""
        found = [v for k, v in self.query if k == name]
        return found[-1] if found else None

    def to_json(self) -> dict[str, object]:
        return {
            "time": self.time,
            "account": self.account,
            "method": self.method,
            "path": self.path,
            "query": [list(kv) for kv in self.query],
            "status": self.status,
        }


class RequestLog:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: deque[RequestEntry] = deque(maxlen=capacity)
        self._counters: Counter[CounterKey] = Counter()

    def record(self, entry: RequestEntry) -> None:
        self._entries.append(entry)
        self._counters[(entry.account, entry.method, entry.path, entry.status)] += 1

    def counters(self) -> dict[CounterKey, int]:
        return dict(self._counters)

    def count(
        self,
        *,
        account: str | None = None,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> int:
        """Sum of counters matching every given criterion (None = any)."""
        return sum(
            n
            for (a, m, p, s), n in self._counters.items()
            if (account is None or a == account)
            and (method is None or m == method)
            and (path is None or p == path)
            and (status is None or s == status)
        )

    def entries(
        self, *, path: str | None = None, account: str | None = None, last: int | None = None
    ) -> list[RequestEntry]:
        """Retained entries, oldest first, optionally filtered and cut to the ``last`` ones."""
        picked: Iterable[RequestEntry] = self._entries
        if path is not None or account is not None:
            picked = [
                e
                for e in self._entries
                if (path is None or e.path == path) and (account is None or e.account == account)
            ]
        out = list(picked)
        return out if last is None else out[-last:] if last > 0 else []

    def reset(self) -> None:
        self._entries.clear()
        self._counters.clear()

    def to_json(
        self, *, path: str | None = None, account: str | None = None, last: int = 0
    ) -> dict[str, object]:
        return {
            "counters": [
                {"account": a, "method": m, "path": p, "status": s, "count": n}
                for (a, m, p, s), n in sorted(self._counters.items(), key=lambda kv: str(kv[0]))
            ],
            "entries": [e.to_json() for e in self.entries(path=path, account=account, last=last)]
            if last
            else [],
        }


class RequestLogMiddleware:
    """ASGI middleware recording every partner request (``/_sim/`` control calls excluded)."""

    def __init__(self, app: ASGIApp, log: RequestLog, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.log = log
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500  # if the app dies before answering, the server answers 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = route.path if isinstance(route, BaseRoute) and hasattr(route, "path") else scope["path"]
            raw_query = scope.get("query_string", b"").decode("latin-1")
            method = sys.intern(scope["method"])
            self.log.record(
                RequestEntry(started, scope.get(ACCOUNT_SCOPE_KEY), method, path, raw_query, status)
            )
