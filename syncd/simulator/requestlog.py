"""Every partner request the simulator answered: exact counters plus a bounded detail ring.

Counters by (account, method, path template, status) are kept for the whole life of the
simulator (their cardinality is tiny); the detailed entries live in a ring buffer so a
long benchmark does not grow memory. Tests use both: "the restarted daemon resumed from
its checkpoint" reads the ``filters`` of an entry, "metrics equal what the partner saw"
compares counters.

Injected faults are marked: ``fault`` names the kind, and ``status`` is what the client
really received, 0 when it got no usable answer (hang, reset, truncated body). Every
429 records ``retry_at``, the wall-clock time its ``Retry-After`` promised, so a test can
check that no request of that account arrived before it (``retry_violations``).
"""

from __future__ import annotations

import email.utils
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
# Set by the fault shell: the kind injected, and the status the client saw when not the sent one.
FAULT_SCOPE_KEY = "syncd.simulator.fault"
STATUS_SCOPE_KEY = "syncd.simulator.status"
CONTROL_PREFIX = "/_sim/"
NO_RESPONSE = 0  # the status recorded when the client got no usable answer

CounterKey = tuple[str | None, str, str, int]
FaultKey = tuple[str | None, str, str, int]  # account, path, fault kind, status


@dataclass(frozen=True, slots=True)
class RequestEntry:
    """One request; the query string is kept raw (parsed on demand) to keep the ring small."""

    time: float
    account: str | None
    method: str
    path: str
    raw_query: str
    status: int
    fault: str | None = None
    retry_at: float | None = None

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
            "fault": self.fault,
            "retry_at": self.retry_at,
        }


def retry_at(value: str, now: float) -> float | None:
    """When a ``Retry-After`` value (delta-seconds or HTTP-date) sent at ``now`` expires."""
    value = value.strip()
    if value.isdigit():
        return now + int(value)
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


class RequestLog:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: deque[RequestEntry] = deque(maxlen=capacity)
        self._counters: Counter[CounterKey] = Counter()
        self._faults: Counter[FaultKey] = Counter()

    def record(self, entry: RequestEntry) -> None:
        self._entries.append(entry)
        self._counters[(entry.account, entry.method, entry.path, entry.status)] += 1
        if entry.fault is not None:
            self._faults[(entry.account, entry.path, entry.fault, entry.status)] += 1

    def fault_counters(self) -> dict[FaultKey, int]:
        """Faulted requests by (account, path, fault kind, status received); kept forever."""
        return dict(self._faults)

    def count_faults(
        self, kind: str | None = None, *, account: str | None = None, path: str | None = None
    ) -> int:
        """Faulted requests matching every given criterion; ``kind`` matches a part of
        a combined marker too (``revoke_tokens+status`` counts for both kinds)."""
        return sum(
            n
            for (a, p, k, _), n in self._faults.items()
            if (kind is None or kind in k.split("+"))
            and (account is None or a == account)
            and (path is None or p == path)
        )

    def retry_violations(self, *, slack_s: float = 0.0) -> list[tuple[RequestEntry, RequestEntry]]:
        """(promise, early request) pairs: a request of an account that arrived after a 429
        had promised a later ``retry_at`` to that account. A promise binds requests
        arriving more than ``slack_s`` after it was made (earlier ones may have been in
        flight already). Only the retained ring is checked."""
        out: list[tuple[RequestEntry, RequestEntry]] = []
        by_account: dict[str | None, list[RequestEntry]] = {}
        for e in sorted(self._entries, key=lambda e: e.time):
            by_account.setdefault(e.account, []).append(e)
        for entries in by_account.values():
            promises = sorted((e for e in entries if e.retry_at is not None), key=lambda e: e.time)
            strongest: RequestEntry | None = None
            k = 0
            for e in entries:
                while k < len(promises) and promises[k].time + slack_s < e.time:
                    p = promises[k]
                    if strongest is None or (p.retry_at or 0.0) > (strongest.retry_at or 0.0):
                        strongest = p
                    k += 1
                if strongest is not None and e is not strongest and e.time < (strongest.retry_at or 0.0):
                    out.append((strongest, e))
        return out

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
        self._faults.clear()

    def to_json(
        self, *, path: str | None = None, account: str | None = None, last: int = 0
    ) -> dict[str, object]:
        return {
            "counters": [
                {"account": a, "method": m, "path": p, "status": s, "count": n}
                for (a, m, p, s), n in sorted(self._counters.items(), key=lambda kv: str(kv[0]))
            ],
            "faults": [
                {"account": a, "path": p, "fault": k, "status": s, "count": n}
                for (a, p, k, s), n in sorted(self._faults.items(), key=lambda kv: str(kv[0]))
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
        promised: float | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, promised
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 429:
                    promised = self._promise(message)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = route.path if isinstance(route, BaseRoute) and hasattr(route, "path") else scope["path"]
            raw_query = scope.get("query_string", b"").decode("latin-1")
            method = sys.intern(scope["method"])
            fault = scope.get(FAULT_SCOPE_KEY)
            if fault is not None:
                status = scope.get(STATUS_SCOPE_KEY, status)
            account = scope.get(ACCOUNT_SCOPE_KEY)
            self.log.record(RequestEntry(started, account, method, path, raw_query, status, fault, promised))

    def _promise(self, message: Message) -> float | None:
        for name, value in message.get("headers", ()):
            if name.lower() == b"retry-after":
                return retry_at(value.decode("latin-1"), self.clock())
        return None
