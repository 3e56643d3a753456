"""Sending one push to one device: aes128gcm encryption (pywebpush), a VAPID token per
push-service origin, HTTP with aiohttp, retries with tenacity.

pywebpush is used for encryption only: its `webpush()` blocks the event loop, signs a new
VAPID token per call, defaults to TTL 0 and writes into the claims dict it is given. Here
many pushes are in flight at once on one connection pool, and one token per origin is
signed and reused for `TOKEN_LIFETIME_S` (VAPID allows at most 24 h).

Responses: 2xx sent; 404/410 gone (the caller deletes the subscription); 429, 5xx,
timeouts and connection errors are retried, 3 attempts in all (exponential backoff, or
`Retry-After` when given; one asking for more than 30 s ends the delivery at once) and
end as `send_failed`; 3xx (redirects are refused), 400, 413 and other 4xx are
`rejected` without retry; an endpoint the guard refuses is `blocked`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher, WebPushException
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from gateway.config import Settings
from gateway.metrics import PUSH_SECONDS, PUSHES
from gateway.push.guard import EndpointGuard, EndpointRefused, GuardedResolver, describe
from gateway.push.payload import PushMessage
from gateway.push.subscriptions import Subscription

TTL_S = 24 * 3600
TOKEN_LIFETIME_S = 12 * 3600
TOKEN_RENEW_BEFORE_S = 3600
ERROR_BODY_BYTES = 300

SENT, RETRY, SEND_FAILED = "sent", "retry", "send_failed"
GONE, REJECTED, BLOCKED = "gone", "rejected", "blocked"


class VapidTokens:
    """One signed VAPID `Authorization` header per push-service origin, reused until an
    hour before it expires."""

    def __init__(self, private_key: str, subject: str) -> None:
        self._vapid = Vapid.from_string(private_key=private_key)
        self._subject = subject
        self._cache: dict[str, tuple[str, int]] = {}
        self.signed = 0

    def authorization(self, endpoint: str, now: float | None = None) -> str:
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        now = time.time() if now is None else now
        cached = self._cache.get(origin)
        if cached and cached[1] - now > TOKEN_RENEW_BEFORE_S:
            return cached[0]
        expires = int(now) + TOKEN_LIFETIME_S
        # A fresh claims dict every time: a shared one would carry one service's `aud` to the next.
        claims = {"aud": origin, "exp": expires, "sub": self._subject}
        header = str(self._vapid.sign(claims)["Authorization"])
        self._cache[origin] = (header, expires)
        self.signed += 1
        return header


@dataclass(frozen=True)
class Attempt:
    status: str
    http_status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Delivery:
    attempts: tuple[Attempt, ...]

    @property
    def status(self) -> str:
        return self.attempts[-1].status


class _Transient(Exception):
    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt.error)
        self.attempt = attempt


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) in seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() alone also takes "²"
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": a date in UTC of unknown origin
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify(status: int, retry_after: str | None, body: str) -> Attempt:
    if 200 <= status < 300:
        return Attempt(SENT, status)
    error = body[:ERROR_BODY_BYTES] or None
    if status in (404, 410):
        return Attempt(GONE, status, error)
    if status == 429 or status >= 500:
        return Attempt(RETRY, status, error, retry_after_s(retry_after))
    if 300 <= status < 400:
        return Attempt(REJECTED, status, "redirect refused")
    return Attempt(REJECTED, status, error)


class PushSender:
    """Many pushes in flight on one aiohttp session; open with `async with`."""

    def __init__(
        self, guard: EndpointGuard, tokens: VapidTokens, *, concurrency: int = 200,
        timeout_s: float = 10.0, attempts: int = 3, backoff_base_s: float = 0.5,
        max_retry_after_s: float = 30.0,
    ) -> None:  # fmt: skip
        self.guard, self.tokens = guard, tokens
        self._concurrency, self._timeout_s = concurrency, timeout_s
        self._attempts, self._backoff_base_s = attempts, backoff_base_s
        self._max_retry_after_s = max_retry_after_s
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **options: float) -> PushSender:
        guard = EndpointGuard.from_origins(settings.push_endpoint_allow)
        tokens = VapidTokens(settings.vapid_private_key, settings.vapid_subject)
        return cls(guard, tokens, concurrency=settings.push_concurrency, **options)  # type: ignore[arg-type]

    async def __aenter__(self) -> PushSender:
        return self.open()

    def open(self) -> PushSender:
        """Start the connection pool (inside the event loop that will use it)."""
        connector = aiohttp.TCPConnector(
            limit=self._concurrency, limit_per_host=self._concurrency,
            resolver=GuardedResolver(self.guard), ttl_dns_cache=60,
        )  # fmt: skip
        timeout = aiohttp.ClientTimeout(total=self._timeout_s, connect=min(5.0, self._timeout_s))
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, subscription: Subscription, message: PushMessage) -> Delivery:
        """Deliver `message` to one device, retrying transient failures."""
        try:
            self.guard.check_url(subscription.endpoint)
            body, headers = self._prepare(subscription, message)
        except EndpointRefused as exc:
            return self._done(Attempt(BLOCKED, error=describe(exc)))
        except (WebPushException, VapidException, ValueError) as exc:
            return self._done(Attempt(REJECTED, error=f"cannot prepare the push: {describe(exc)}"))
        first = await self._post(subscription.endpoint, body, headers)
        PUSHES.labels(first.status).inc()
        if first.status != RETRY:  # the common case, without the retry machinery
            return Delivery((first,))
        return await self._retry(subscription.endpoint, body, headers, first)

    async def _retry(
        self, endpoint: str, body: bytes, headers: dict[str, str], first: Attempt
    ) -> Delivery:
        """Attempts after a transient failure, paced by tenacity (backoff or Retry-After)."""
        attempts = [first]
        try:
            async for attempt in AsyncRetrying(
                stop=self._should_stop, wait=self._wait,
                retry=retry_if_exception_type(_Transient), reraise=True,
            ):  # fmt: skip
                with attempt:
                    # Tenacity's first round replays the failure above, so its attempt
                    # numbers and waits are those of the real attempts.
                    if attempt.retry_state.attempt_number > 1:
                        attempts.append(await self._post(endpoint, body, headers))
                        PUSHES.labels(attempts[-1].status).inc()
                    if attempts[-1].status == RETRY:
                        raise _Transient(attempts[-1])
        except _Transient:
            attempts[-1] = replace(attempts[-1], status=SEND_FAILED)
            PUSHES.labels(SEND_FAILED).inc()
        return Delivery(tuple(attempts))

    def _prepare(
        self, subscription: Subscription, message: PushMessage
    ) -> tuple[bytes, dict[str, str]]:
        info = {"endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}  # fmt: skip
        body = WebPusher(info).encode(message.payload, "aes128gcm")["body"]
        headers = {
            "TTL": str(TTL_S), "Urgency": message.urgency, "Content-Encoding": "aes128gcm",
            # Push services take any type; web-push-testing reads only this one.
            "Content-Type": "application/octet-stream",
            "Authorization": self.tokens.authorization(subscription.endpoint),
        }  # fmt: skip
        if message.topic:
            headers["Topic"] = message.topic
        return bytes(body), headers

    async def _post(self, endpoint: str, body: bytes, headers: dict[str, str]) -> Attempt:
        if self._session is None:
            raise RuntimeError("PushSender used outside `async with`")
        started = time.perf_counter()
        try:
            async with self._session.post(
                endpoint, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = ""
                if response.status >= 300:
                    text = (await response.content.read(ERROR_BODY_BYTES)).decode(errors="replace")
                return classify(response.status, response.headers.get("Retry-After"), text)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, EndpointRefused):
                return Attempt(BLOCKED, error=describe(exc.os_error))
            return Attempt(RETRY, error=describe(exc))
        except aiohttp.InvalidURL as exc:
            return Attempt(REJECTED, error=f"invalid endpoint: {describe(exc)}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Attempt(RETRY, error=describe(exc) if str(exc) else type(exc).__name__)
        finally:
            PUSH_SECONDS.observe(time.perf_counter() - started)

    def _should_stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self._attempts:
            return True
        wait = _transient(state).retry_after_s
        return wait is not None and wait > self._max_retry_after_s

    def _wait(self, state: RetryCallState) -> float:
        wait = _transient(state).retry_after_s
        if wait is not None:
            return wait
        delay = self._backoff_base_s * 2 ** (state.attempt_number - 1)
        return random.uniform(delay / 2, delay)

    @staticmethod
    def _done(attempt: Attempt) -> Delivery:
        PUSHES.labels(attempt.status).inc()
        return Delivery((attempt,))


def _transient(state: RetryCallState) -> Attempt:
    assert state.outcome is not None
    exc = state.outcome.exception()
    return exc.attempt if isinstance(exc, _Transient) else Attempt(RETRY)
