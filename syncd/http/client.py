"""PartnerClient: the one way connectors talk to a partner.

    request -> throttle (all tiers + concurrency) -> auth headers -> httpx (one attempt)
            -> size-capped body -> classify -> retry by class (tenacity) -> JSON

Everything a call does is measured and logged here: one ``api_call`` event and one
counter increment per attempt, so partner-side request logs and our metrics agree.
Nothing above this module sees ``httpx`` exceptions.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
import msgspec
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay

from syncd import errors
from syncd.http.auth import Auth, NoAuth
from syncd.http.classify import PartnerRules, classify, is_retryable
from syncd.http.throttle import Throttle
from syncd.observability.logging import redact_text
from syncd.observability.metrics import Metrics

_RATE_HEADER_PREFIX = "x-ratelimit-"
T = TypeVar("T")
Decode = Callable[[bytes], T]


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


def backoff_delay(attempt: int, exc: BaseException | None, initial: float, cap: float, rand: float) -> float:
    """Seconds before the next attempt: the partner's Retry-After if it gave one (never
    undercut), else exponential backoff with full jitter (``rand`` in [0, 1))."""
    if isinstance(exc, errors.RateLimited) and exc.retry_after is not None:
        return exc.retry_after + rand * min(1.0, 0.1 * exc.retry_after)
    return rand * min(cap, initial * 2.0 ** max(0, attempt - 1))


def build_http_client(
    connect_timeout_s: float, read_timeout_s: float, max_connections: int
) -> httpx.AsyncClient:
    """The shared transport: no redirects (they could leave the partner's host), bounded pool."""
    timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=read_timeout_s)
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False, trust_env=False)


class PartnerClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        options: ClientOptions,
        *,
        throttle: Throttle,
        metrics: Metrics,
        log: Any,
        rules: PartnerRules | None = None,
        auth: Auth | None = None,
    ) -> None:
        self._http = http
        self.options = options
        self.base = httpx.URL(options.base_url.rstrip("/"))
        self._throttle = throttle
        self._metrics = metrics
        self._log = log.bind(partner=options.partner, integration=options.integration_id)
        self._rules = rules or PartnerRules()
        self.auth: Auth = auth or NoAuth()

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
        async for attempt in self._retrying():
            with attempt:
                body = await self._authorized("GET", url, endpoint, params)
                return self._decode(body, decode, endpoint)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

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

    async def post_form_json(self, url: str, endpoint: str, form: Mapping[str, str]) -> Any:
        """One unauthenticated form POST (token endpoints); retried on transient errors only."""
        target = httpx.URL(url)
        async for attempt in self._retrying(retry_rate_limited=False):
            with attempt:
                status, headers, body = await self._attempt("POST", target, endpoint, data=form)
                parsed = (
                    self._decode(body, orjson.loads, endpoint) if 200 <= status < 300 else _loads_quiet(body)
                )
                failure = classify(status, headers, parsed, self._rules)
                if failure is not None:
                    raise failure
                return parsed
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    # --- one logical request --------------------------------------------------------------

    def _url(self, path: str) -> httpx.URL:
        url = self.base.join(self.base.path + path) if not path.startswith("http") else httpx.URL(path)
        if (url.scheme, url.host, url.port) != (self.base.scheme, self.base.host, self.base.port):
            raise errors.OffHostRequest(f"refusing to request {url.host!r}: not the partner's host")
        return url

    def _retrying(self, retry_rate_limited: bool = True) -> AsyncRetrying:
        o = self.options

        def should_retry(exc: BaseException) -> bool:
            if isinstance(exc, errors.RateLimited) and not retry_rate_limited:
                return False
            return is_retryable(exc)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return backoff_delay(
                state.attempt_number, exc, o.backoff_initial_s, o.backoff_max_s, random.random()
            )

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, errors.PartnerError):
                self._metrics.api_retries.labels(o.partner, exc.error_class.value).inc()

        return AsyncRetrying(
            stop=stop_after_attempt(o.max_attempts) | stop_before_delay(o.request_deadline_s),
            wait=wait,
            retry=retry_if_exception(should_retry),
            before_sleep=before_sleep,
            sleep=anyio.sleep,
            reraise=True,
        )

    async def _authorized(
        self, method: str, url: httpx.URL, endpoint: str, params: Mapping[str, str | int] | None
    ) -> bytes:
        """Throttle, authenticate, send; on an auth failure refresh once and resend.

        Returns the body of a successful response. Bodies are parsed here only to classify
        failures, or successes of partners that hide errors in a 200 (``body_error``).
        """
        for auth_attempt in (1, 2):
            async with self._throttle.slot() as waited:
                if waited > 0.001:
                    self._metrics.limiter_wait.labels(self.options.partner).observe(waited)
                headers = await self.auth.headers()
                status, resp_headers, body = await self._attempt(
                    method, url, endpoint, params=params, headers=headers
                )
            ok = 200 <= status < 300
            if ok and self._rules.body_error is None:
                return body
            failure = classify(status, resp_headers, _loads_quiet(body), self._rules)
            if failure is None:
                return body
            if isinstance(failure, errors.RateLimited) and failure.retry_after:
                self._throttle.penalize(failure.retry_after)
            if isinstance(failure, errors.AuthFailed) and auth_attempt == 1:
                await self.auth.invalidate(headers)
                continue
            raise failure
        raise AssertionError("unreachable")  # pragma: no cover

    # --- one attempt on the wire ----------------------------------------------------------

    async def _attempt(
        self,
        method: str,
        url: httpx.URL,
        endpoint: str,
        *,
        params: Mapping[str, str | int] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, httpx.Headers, bytes]:
        o = self.options
        started = time.perf_counter()
        status_label = "error"
        status = 0
        resp_headers = httpx.Headers()
        try:
            async with self._http.stream(method, url, params=params, data=data, headers=headers) as resp:
                status, resp_headers = resp.status_code, resp.headers
                status_label = str(status)
                body = await self._read_capped(resp)
        except httpx.TimeoutException as exc:
            status_label = "timeout"
            raise errors.PartnerUnavailable(f"{type(exc).__name__} calling {endpoint}") from exc
        except httpx.TransportError as exc:
            status_label = "transport_error"
            raise errors.PartnerUnavailable(f"{type(exc).__name__} calling {endpoint}") from exc
        except httpx.DecodingError as exc:
            status_label = "decoding_error"
            raise errors.PartnerUnavailable(f"undecodable body from {endpoint}") from exc
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.api_calls.labels(o.partner, endpoint, status_label).inc()
            self._metrics.api_latency.labels(o.partner, endpoint).observe(elapsed)
            self._log.info(
                "api_call",
                method=method,
                endpoint=endpoint,
                status=status_label,
                duration_ms=round(elapsed * 1000, 2),
                **{
                    k.removeprefix(_RATE_HEADER_PREFIX).replace("-", "_"): v
                    for k, v in resp_headers.items()
                    if k.startswith(_RATE_HEADER_PREFIX)
                },
            )
        return status, resp_headers, body

    async def _read_capped(self, resp: httpx.Response) -> bytes:
        cap = self.options.max_body_bytes
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise errors.PartnerRejected(f"response body of {declared} bytes exceeds the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():  # decompressed: the cap bounds memory, not wire bytes
            size += len(chunk)
            if size > cap:
                raise errors.PartnerRejected(f"response body exceeds the {cap}-byte cap")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _decode(body: bytes, decode: Decode[T], endpoint: str) -> T:
        try:
            return decode(body)
        except (ValueError, msgspec.MsgspecError) as exc:
            # Truncated or garbled bodies happen under load; another attempt usually succeeds.
            detail = redact_text(str(exc))[:120]
            raise errors.PartnerUnavailable(f"undecodable body from {endpoint}: {detail}") from exc


def _loads_quiet(body: bytes) -> Any:
    """Best-effort parse of an error body, only to classify it."""
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
