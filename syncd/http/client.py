"""PartnerClient: the one way connectors talk to a partner.

    request -> retry by class (tenacity), per attempt:
        breaker (fail fast) -> throttle (budgets + concurrency) -> auth headers
        -> breaker permit -> the transport (syncd.http.transport), under the request's
           deadline (a half-open probe's timeout if shorter): connect, head, whole body
        -> size-capped body, inflated within the cap (syncd.http.body) -> classify
        -> decode -> breaker outcome, budget refinement

Everything a call does is measured and logged here: one ``api_call`` event (with the
attempt number and error class) and one counter increment per request on the wire, so
partner-side request logs and our metrics agree. Nothing above this module sees
``httpx`` exceptions.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
import msgspec
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay

from syncd import __version__, errors
from syncd.http import body as bodies
from syncd.http.auth import Auth, NoAuth
from syncd.http.breaker import Breakers, Permit
from syncd.http.classify import PartnerRules, classify, is_retryable
from syncd.http.throttle import Clock, Pass, Throttle
from syncd.observability.logging import redact_text
from syncd.observability.metrics import Metrics

_RATE_HEADER_PREFIX = "x-ratelimit-"
_RATE_HEADER_BYTES = _RATE_HEADER_PREFIX.encode()
_REMAINING_PREFIX = _RATE_HEADER_PREFIX + "remaining"
_NO_BREAKERS = Breakers(())
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 30.0
USER_AGENT = f"syncd/{__version__}"
# httpx's transport adds none of the defaults its client would; these are ours.
_DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": bodies.ACCEPT_ENCODING, "Accept": "*/*"}
T = TypeVar("T")
Decode = Callable[[bytes], T]


@dataclass(frozen=True, slots=True)
class Body:
    """A request body sent as is, and its media type."""

    data: bytes
    media_type: str


@dataclass(frozen=True)
class ClientOptions:
    partner: str
    integration_id: str
    base_url: str
    max_attempts: int = 5
    request_deadline_s: float = 120.0
    max_body_bytes: int = 32 * 1024 * 1024
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    # Per partner, applied per request (the transport is shared); None: the defaults.
    connect_timeout_s: float | None = None
    read_timeout_s: float | None = None


def backoff_delay(attempt: int, exc: BaseException | None, initial: float, cap: float, rand: float) -> float:
    """Seconds before the next attempt: the partner's Retry-After if it gave one (never
    undercut), else exponential backoff with full jitter (``rand`` in [0, 1))."""
    if isinstance(exc, errors.RateLimited) and exc.retry_after is not None:
        return exc.retry_after + rand * min(1.0, 0.1 * exc.retry_after)
    return rand * min(cap, initial * 2.0 ** max(0, attempt - 1))


class PartnerClient:
    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        options: ClientOptions,
        *,
        throttle: Throttle,
        metrics: Metrics,
        log: Any,
        rules: PartnerRules | None = None,
        auth: Auth | None = None,
        breakers: Breakers = _NO_BREAKERS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._transport = transport
        self.options = options
        self.base = httpx.URL(options.base_url.rstrip("/"))
        self._base_text = str(self.base).rstrip("/")
        read = options.read_timeout_s or DEFAULT_READ_TIMEOUT_S
        connect = options.connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S
        # The httpx request extension every transport reads (pool: waiting for a connection).
        self._timeout = {"timeout": httpx.Timeout(read, connect=connect, pool=read).as_dict()}
        self._throttle = throttle
        self._unthrottled = Throttle(clock=clock)
        self._breakers = breakers
        self._clock = clock
        self._metrics = metrics
        self._log = log.bind(partner=options.partner, integration=options.integration_id)
        self._rules = rules or PartnerRules()
        self.auth: Auth = auth or NoAuth()
        # Labelled children cached: ``labels()`` is a dict lookup plus locking, per request.
        self._limiter_wait = metrics.limiter_wait.labels(options.partner)
        self._rate_limited = metrics.rate_limited.labels(options.partner)
        self._rejections = metrics.breaker_rejections.labels(options.partner)
        self._recent = metrics.recent_calls
        self._counters: dict[tuple[str, str], Any] = {}
        self._latencies: dict[str, Any] = {}

    # --- public ---------------------------------------------------------------------------

    async def get(
        self,
        endpoint: str,
        path: str | None = None,
        params: Mapping[str, str | int] | None = None,
        *,
        decode: Decode[T],
    ) -> T:
        """GET ``base_url + path`` and decode the body (``endpoint`` is the path template used
        in metrics and logs). Decoding happens inside the retry loop: a truncated or
        garbled body is a transient failure, retried like a 502."""
        url = self._url(path or endpoint)
        return await self._retried(
            lambda attempt, deadline: self._exchange(
                "GET", url, endpoint, attempt, deadline, decode, params=params
            )
        )

    async def get_or_none(
        self, endpoint: str, path: str, params: Mapping[str, str | int] | None = None, *, decode: Decode[T]
    ) -> T | None:
        """Like ``get`` but a 404 means "absent" instead of an error."""
        try:
            return await self.get(endpoint, path, params, decode=decode)
        except errors.PartnerRejected as exc:
            if exc.status == 404:
                return None
            raise

    async def post_rpc(
        self,
        endpoint: str,
        document: Any,
        *,
        decode: Decode[T],
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """POST ``document`` as JSON to ``base_url + endpoint`` (an RPC-style API), authenticated
        and throttled, with ``headers`` added.

        Retried by method: an ``idempotent`` call (its repetition changes nothing: a read,
        an update to absolute values, a delete) by the usual rules; any other only when the
        partner provably did not act on it (``errors.NotSent``: no connection; a 429). A
        timeout, a reset or a 5xx after the request went out is raised to the caller, who
        must find out what happened before trying again (docs/pushes.md)."""
        url = self._url(endpoint)
        body = Body(orjson.dumps(document), "application/json")
        return await self._retried(
            lambda attempt, deadline: self._exchange(
                "POST", url, endpoint, attempt, deadline, decode, body=body, headers=headers
            ),
            retry_unsent_only=not idempotent,
        )

    async def post_form_json(self, url: str, endpoint: str, form: Mapping[str, str]) -> Any:
        """One unauthenticated form POST (token endpoints); retried on transient errors only.
        Not rate-limited by the API's tiers, but guarded by the breakers."""
        target = httpx.URL(url)
        return await self._retried(
            lambda attempt, deadline: self._exchange(
                "POST", target, endpoint, attempt, deadline, orjson.loads, form=form, authorized=False
            ),
            retry_rate_limited=False,
        )

    async def post(
        self, endpoint: str, path: str | None = None, *, content: bytes, content_type: str, decode: Decode[T]
    ) -> T:
        """An authenticated POST of ``content`` to ``base_url + path``, retried like a GET:
        only for requests the partner may receive twice without harm (an acknowledgement)."""
        url = self._url(path or endpoint)
        body = Body(content, content_type)
        return await self._retried(
            lambda attempt, deadline: self._exchange(
                "POST", url, endpoint, attempt, deadline, decode, body=body
            )
        )

    async def post_json(self, url: str, endpoint: str, document: Mapping[str, str]) -> Any:
        """``post_form_json`` for token endpoints that take a JSON document."""
        target = httpx.URL(url)
        body = Body(orjson.dumps(dict(document)), "application/json")
        return await self._retried(
            lambda attempt, deadline: self._exchange(
                "POST", target, endpoint, attempt, deadline, orjson.loads, body=body, authorized=False
            ),
            retry_rate_limited=False,
        )

    async def post_once(
        self,
        url: str,
        endpoint: str,
        *,
        form: Mapping[str, str] | None = None,
        json_body: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One unauthenticated POST of a form or a JSON body, with ``headers`` (a token
        endpoint's client authentication), sent exactly once: for requests that spend a
        single-use input (an authorization code, a rotating refresh token) a resend after
        the partner acted is a reuse, so the caller decides what a failure means. Guarded
        by the breakers."""
        body = Body(orjson.dumps(dict(json_body)), "application/json") if json_body is not None else None
        deadline = time.monotonic() + self.options.request_deadline_s
        return await self._exchange(
            "POST", httpx.URL(url), endpoint, 1, deadline, orjson.loads,
            form=form, body=body, authorized=False, headers=headers,
        )  # fmt: skip

    # --- one logical request --------------------------------------------------------------

    def _url(self, path: str) -> httpx.URL | str:
        if path.startswith("/"):
            # The base URL's authority ends before this "/": the host cannot change. A plain
            # string, parsed once by httpx, like any caller's URL (a join parses twice).
            return self._base_text + path
        url = self.base.join(self.base.path + path) if not path.startswith("http") else httpx.URL(path)
        if (url.scheme, url.host, url.port) != (self.base.scheme, self.base.host, self.base.port):
            raise errors.OffHostRequest(f"refusing to request {url.host!r}: not the partner's host")
        return url

    async def _retried(
        self,
        exchange: Callable[[int, float], Awaitable[T]],
        retry_rate_limited: bool = True,
        retry_unsent_only: bool = False,
    ) -> T:
        """Attempt 1 directly; after a retryable failure, tenacity runs attempts 2..n. Every
        attempt's exchange ends by the request's deadline (monotonic ``started`` +
        ``request_deadline_s``), whatever the partner's pace.

        Not tenacity from the start: ``AsyncRetrying`` costs tens of µs of CPU per call even
        when the first attempt succeeds (it re-wraps its callbacks, with ``inspect``
        checks, on every iteration): a tenth of an httpx request, paid by every call.
        """
        started = time.monotonic()
        deadline = started + self.options.request_deadline_s
        try:
            return await exchange(1, deadline)
        except errors.PartnerError as exc:
            if (
                not self._should_retry(exc, retry_rate_limited, retry_unsent_only)
                or self.options.max_attempts < 2
            ):
                raise
            first = exc
        # What tenacity's wait/stop/before_sleep would have done after attempt 1.
        delay = self._backoff(1, first)
        if time.monotonic() - started + delay >= self.options.request_deadline_s:
            raise first
        self._count_retry(first)
        await anyio.sleep(delay)
        async for attempt in self._retrying(retry_rate_limited, started, retry_unsent_only):
            with attempt:
                return await exchange(attempt.retry_state.attempt_number + 1, deadline)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _retrying(
        self, retry_rate_limited: bool, started: float, retry_unsent_only: bool = False
    ) -> AsyncRetrying:
        """Attempts 2..n (tenacity counts them from 1): stop at ``max_attempts`` or when the
        next attempt would start past the deadline; wait by class (``backoff_delay``)."""
        o = self.options
        remaining = o.request_deadline_s - (time.monotonic() - started)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self._backoff(state.attempt_number + 1, exc)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, errors.PartnerError):
                self._count_retry(exc)

        return AsyncRetrying(
            stop=stop_after_attempt(o.max_attempts - 1) | stop_before_delay(remaining),
            wait=wait,
            retry=retry_if_exception(
                lambda exc: self._should_retry(exc, retry_rate_limited, retry_unsent_only)
            ),
            before_sleep=before_sleep,
            sleep=anyio.sleep,
            reraise=True,
        )

    @staticmethod
    def _should_retry(exc: BaseException, retry_rate_limited: bool, retry_unsent_only: bool = False) -> bool:
        if isinstance(exc, errors.RateLimited) and not retry_rate_limited:
            return False
        if retry_unsent_only and not isinstance(exc, errors.NotSent | errors.RateLimited):
            return False
        return is_retryable(exc)

    def _backoff(self, attempt: int, exc: BaseException | None) -> float:
        o = self.options
        return backoff_delay(attempt, exc, o.backoff_initial_s, o.backoff_max_s, random.random())

    def _count_retry(self, exc: errors.PartnerError) -> None:
        self._metrics.api_retries.labels(self.options.partner, exc.error_class.value).inc()

    async def _exchange(
        self,
        method: str,
        url: httpx.URL | str,
        endpoint: str,
        attempt: int,
        deadline: float,
        decode: Decode[T],
        *,
        params: Mapping[str, str | int] | None = None,
        form: Mapping[str, str] | None = None,
        body: Body | None = None,
        authorized: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """One attempt: breaker, throttle, auth, the wire. On an auth failure the
        credentials are refreshed once and the request resent (same attempt number)."""
        try:
            # Before waiting for budget: an open breaker must not queue behind the limiter.
            self._breakers.check(self._clock())
        except errors.CircuitOpen:
            self._rejections.inc()
            raise
        throttle = self._throttle if authorized else self._unthrottled
        fixed = headers
        headers = None
        for auth_attempt in (1, 2):
            admitted = await throttle.acquire()
            try:
                if admitted.waited > 0.001:
                    self._limiter_wait.observe(admitted.waited)
                headers = await self.auth.headers() if authorized else dict(fixed or {}) or None
                # An authenticated call's own headers ride beside the credentials'.
                sent_headers = {**(headers or {}), **fixed} if authorized and fixed else headers
                # Admitted after auth: a token request (itself guarded) must not find this
                # request holding the only half-open probe slot.
                permits = self._admit()
                try:
                    return await self._send(
                        method,
                        url,
                        endpoint,
                        attempt,
                        deadline,
                        decode,
                        throttle,
                        admitted,
                        permits,
                        params,
                        form,
                        sent_headers,
                        body,
                    )
                except errors.AuthFailed:
                    if not authorized or auth_attempt == 2 or headers is None:
                        raise
                    await self.auth.invalidate(headers)
            finally:
                throttle.release(admitted)
        raise AssertionError("unreachable")  # pragma: no cover

    def _admit(self) -> tuple[Permit, ...]:
        try:
            return self._breakers.admit(self._clock())
        except errors.CircuitOpen:
            self._rejections.inc()
            raise

    async def _send(
        self,
        method: str,
        url: httpx.URL | str,
        endpoint: str,
        attempt: int,
        deadline: float,
        decode: Decode[T],
        throttle: Throttle,
        admitted: Pass,
        permits: tuple[Permit, ...],
        params: Mapping[str, str | int] | None,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        content: Body | None = None,
    ) -> T:
        """The request on the wire, classified, decoded; every outcome reported to the
        breakers, the throttle, the metrics and the log."""
        started = time.perf_counter()
        status_label = "error"
        resp_headers: httpx.Headers | None = None
        rate_headers: list[tuple[str, str]] = []
        failure: errors.PartnerError | None = None
        extra: dict[str, Any] = {}
        cancelled = False
        probe_timeout = Breakers.probe_timeout(permits)
        left = deadline - time.monotonic()
        # The shorter bound wins: a half-open probe's timeout, or what is left of the request's
        # deadline. Both cover connecting, the head and the whole body, however it trickles.
        by_probe = probe_timeout is not None and probe_timeout < left
        try:
            try:
                with anyio.fail_after(probe_timeout if by_probe else max(left, 0.0)):
                    if headers:
                        headers = {**_DEFAULT_HEADERS, **headers}
                    if content is not None:
                        headers = {**(headers or _DEFAULT_HEADERS), "Content-Type": content.media_type}
                    request = httpx.Request(
                        method,
                        url,
                        params=params,
                        data=form,
                        content=content.data if content is not None else None,
                        headers=headers or _DEFAULT_HEADERS,
                        extensions=self._timeout,
                    )
                    resp = await self._transport.handle_async_request(request)
                    try:
                        status, resp_headers = resp.status_code, resp.headers
                        status_label = str(status)
                        rate_headers = _rate_headers(resp_headers)
                        try:
                            body = await bodies.read_capped(resp, self.options.max_body_bytes)
                        except httpx.TransportError as exc:
                            if not 200 <= status < 300:
                                raise
                            status_label = "transport_error"
                            raise errors.AnswerLost(
                                f"{endpoint} answered {status}, then the body was cut ({type(exc).__name__})"
                            ) from exc
                    finally:
                        await resp.aclose()
            except TimeoutError as exc:  # our deadline (httpx raises its own types)
                status_label = "probe_timeout" if by_probe else "timeout"
                if by_probe:
                    raise errors.PartnerUnavailable(f"probe of {endpoint} timed out") from exc
                raise errors.PartnerUnavailable(
                    f"{endpoint} not answered in full within request_deadline_s "
                    f"({self.options.request_deadline_s:g} s)"
                ) from exc
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # No connection, so no request: the partner did nothing.
                status_label = "transport_error"
                raise errors.NotSent(
                    f"{type(exc).__name__} calling {endpoint}: {redact_text(str(exc))[:160]}"
                ) from exc
            except httpx.TimeoutException as exc:
                status_label = "timeout"
                raise errors.PartnerUnavailable(f"{type(exc).__name__} calling {endpoint}") from exc
            except httpx.TransportError as exc:
                status_label = "transport_error"
                raise errors.PartnerUnavailable(
                    f"{type(exc).__name__} calling {endpoint}: {redact_text(str(exc))[:160]}"
                ) from exc
            if 200 <= status < 300 and self._rules.body_error is None:
                return self._decode(body, decode, endpoint)
            found = classify(status, resp_headers, _loads_quiet(body), self._rules)
            if found is not None:
                raise found
            return self._decode(body, decode, endpoint)
        except errors.PartnerError as exc:
            failure = exc
            if isinstance(exc, errors.RateLimited):
                extra["blocked_s"] = round(self._throttled(exc, throttle, admitted, rate_headers), 3)
            raise
        except BaseException:
            # Cancelled (or a bug): no outcome to report; free any half-open probe slot.
            cancelled = True
            Breakers.release(permits)
            raise
        finally:
            if resp_headers is None:
                throttle.unanswered(admitted)
            if not cancelled:
                transient = failure is not None and _is_transient(failure)
                Breakers.record(permits, not transient, self._clock())
                if rate_headers and not transient and not isinstance(failure, errors.RateLimited):
                    throttle.observe(admitted, rate_headers)
            self._record(method, endpoint, attempt, status_label, failure, started, rate_headers, extra)

    def _throttled(
        self, exc: errors.RateLimited, throttle: Throttle, admitted: Pass, rate_headers: list[tuple[str, str]]
    ) -> float:
        """A 429: block and slow the budgets; without Retry-After, wait what they estimate."""
        self._rate_limited.inc()
        blocked = throttle.throttled(admitted, exc.retry_after, rate_headers)
        if exc.retry_after is None and blocked > 0:
            exc.retry_after = blocked
        return blocked

    def _record(
        self,
        method: str,
        endpoint: str,
        attempt: int,
        status_label: str,
        failure: errors.PartnerError | None,
        started: float,
        rate_headers: list[tuple[str, str]],
        extra: dict[str, Any],
    ) -> None:
        elapsed = time.perf_counter() - started
        key = (endpoint, status_label)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._metrics.api_calls.labels(
                self.options.partner, endpoint, status_label
            )
        counter.inc()
        latency = self._latencies.get(endpoint)
        if latency is None:
            latency = self._latencies[endpoint] = self._metrics.api_latency.labels(
                self.options.partner, endpoint
            )
        latency.observe(elapsed)
        self._recent.record(self.options.partner, status_label, elapsed, failure is None)
        for k, v in rate_headers:
            # What the partner says is left (its limits are constant, and in the gauges).
            if k.startswith(_REMAINING_PREFIX):
                extra[k[len(_RATE_HEADER_PREFIX) :].replace("-", "_")] = v
        self._log.info(
            "api_call",
            method=method,
            endpoint=endpoint,
            status=status_label,
            attempt=attempt,
            error_class=failure.error_class.value if failure is not None else None,
            duration_ms=round(elapsed * 1000, 2),
            **extra,
        )

    @staticmethod
    def _decode(body: bytes, decode: Decode[T], endpoint: str) -> T:
        try:
            return decode(body)
        except (ValueError, msgspec.MsgspecError, RecursionError) as exc:
            # Truncated or garbled bodies happen under load; another attempt usually succeeds.
            # (RecursionError: JSON nested deeper than any decoder follows, a hostile body.)
            detail = redact_text(str(exc))[:120]
            raise errors.UndecodableBody(f"undecodable body from {endpoint}: {detail}", body=body) from exc


def _rate_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    """The ``X-RateLimit-*`` headers, names lower-cased (the others are never decoded)."""
    return [
        (k.decode("latin-1").lower(), v.decode("latin-1"))
        for k, v in headers.raw
        if k[:12].lower() == _RATE_HEADER_BYTES
    ]


def _is_transient(exc: errors.PartnerError) -> bool:
    """What a circuit breaker counts: the partner is failing, not refusing this request."""
    return isinstance(exc, errors.PartnerUnavailable)


def _loads_quiet(body: bytes) -> Any:
    """Best-effort parse of an error body, only to classify it."""
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
