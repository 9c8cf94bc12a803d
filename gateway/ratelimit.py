"""Per-client rate limits and an overload guard: a flood gets fast 429/503 answers.

`RateLimitMiddleware` sits outermost in the gateway (before the body is read):

- Each client has a token bucket of `burst` requests, refilled at `rate` per
  second (`take`, a pure function of the bucket and the time). A request that
  finds its bucket empty gets 429 with `Retry-After`: the whole seconds until a
  token is back. The client is the subject of a valid bearer token, else the
  peer address, so one customer cannot spend another's budget and a caller
  cannot pick a subject without the signing secret.
- At most `max_in_flight` requests are in progress at once; one more gets 503
  with `Retry-After` at once instead of queueing inside the app, so the gateway
  answers under any flood and never hangs on it.

The hot path is a header scan, two dict lookups and a few float operations, with
no lock (the event loop runs one request's code at a time) and no I/O. A token's
signature is checked once and its subject cached, not once per request; the
route's own authentication still checks every token in full. Buckets of clients
that have gone quiet are forgotten: a full bucket is the same as none.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from prometheus_client import Counter
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from core.settings import Settings
from gateway.auth import InvalidToken, verify_token

# Liveness must answer while the gateway sheds load, and so must the metrics showing it.
EXEMPT_PATHS = frozenset({"/health", "/metrics"})
OVERLOAD_RETRY_AFTER_SECONDS = 1


class Bucket(NamedTuple):
    tokens: float
    updated: float  # monotonic seconds


def take(bucket: Bucket | None, now: float, rate: float, burst: float) -> tuple[Bucket, float]:
    """Spend one token at `now`: the bucket after, and 0.0 if the request may pass,
    else the seconds until the bucket holds a token again (nothing is spent).

    A new client starts with a full bucket; tokens come back at `rate` per second
    up to `burst`.
    """
    tokens = burst if bucket is None else min(burst, bucket.tokens + (now - bucket.updated) * rate)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), 0.0
    return Bucket(tokens, now), (1.0 - tokens) / rate


class RateLimiter:
    """Token buckets by client key, bounded in number."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    def check(self, client: str) -> float:
        """0.0 when `client` may go ahead (one token spent), else seconds to wait."""
        now = self.clock()
        bucket, wait = take(self.buckets.get(client), now, self.rate, self.burst)
        self.buckets[client] = bucket
        if len(self.buckets) > self.max_clients:
            self._forget(now)
        return wait

    def _forget(self, now: float) -> None:
        # Buckets that have refilled mean nothing; if a flood of new clients keeps
        # them all busy, drop the oldest half (they start again with full buckets).
        refill = self.burst / self.rate
        kept = {k: b for k, b in self.buckets.items() if now - b.updated < refill}
        if len(kept) > self.max_clients // 2:
            kept = dict(list(kept.items())[len(kept) // 2 :])
        self.buckets = kept


class ClientKeys:
    """Who a request counts against: `sub:<subject>` of a valid token, else `addr:<peer>`."""

    def __init__(self, secret: SecretStr | None, max_tokens: int = 10_000) -> None:
        self.secret = secret.get_secret_value() if secret is not None else ""
        self.max_tokens = max_tokens
        self.subjects: dict[bytes, str | None] = {}  # token -> subject, None if invalid

    def of(self, scope: Scope) -> str:
        authorization = _header(scope["headers"], b"authorization")
        if authorization is not None and authorization[:7].lower() == b"bearer ":
            token = authorization[7:].strip()
            try:
                subject = self.subjects[token]
            except KeyError:
                subject = self._subject(token)
            if subject is not None:
                return "sub:" + subject
        client = scope.get("client")
        return "addr:" + (client[0] if client else "unknown")

    def _subject(self, token: bytes) -> str | None:
        subject: str | None = None
        if self.secret:
            try:
                subject = verify_token(token.decode("latin-1"), self.secret).sub
            except InvalidToken:
                subject = None
        if len(self.subjects) >= self.max_tokens:
            self.subjects.clear()
        self.subjects[token] = subject
        return subject


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _error(status: int, detail: str, retry_after: int) -> tuple[dict[str, object], bytes]:
    body = json.dumps({"detail": detail}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after).encode()),
        ],
    }
    return start, body


def _nothing() -> None:
    pass


class RateLimitMiddleware:
    """429 past a client's rate, 503 past the gateway's in-flight limit; see the module."""

    def __init__(self, app: ASGIApp, settings: Settings, refused: Counter | None = None) -> None:
        self.app = app
        # Refusals by reason (gateway.metrics); the children are bound once, off the hot path.
        self._count_overloaded = refused.labels("overloaded").inc if refused else _nothing
        self._count_rate_limited = refused.labels("rate_limited").inc if refused else _nothing
        rate = settings.rate_limit_per_second
        # A rate of 0 turns the per-client limits off; the in-flight guard stays.
        self.limiter = RateLimiter(rate, settings.rate_limit_burst) if rate > 0 else None
        self.client_keys = ClientKeys(settings.jwt_secret)
        self.max_in_flight = settings.max_in_flight
        self.in_flight = 0
        self._overloaded = _error(
            503,
            "the gateway is overloaded; retry later",
            OVERLOAD_RETRY_AFTER_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self._count_overloaded()
            await self._send(send, *self._overloaded)
            return
        if self.limiter is not None:
            wait = self.limiter.check(self.client_keys.of(scope))
            if wait > 0.0:
                seconds = max(1, math.ceil(wait))
                self._count_rate_limited()
                detail = f"too many requests; retry after {seconds} s"
                await self._send(send, *_error(429, detail, seconds))
                return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    @staticmethod
    async def _send(send: Send, start: dict[str, object], body: bytes) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": body})
