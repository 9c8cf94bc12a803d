"""Per-client rate limits and the overload guard: the bucket as a function of time, then the app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway import ratelimit
from gateway.ratelimit import Bucket, ClientKeys, RateLimiter, take
from tests.support.gateway import SECRET, FakeReader, M, bearer, running_gateway

# -- the bucket -----------------------------------------------------------------------------


def test_a_new_client_has_a_full_bucket() -> None:
    assert take(None, now=100.0, rate=2.0, burst=3.0) == (Bucket(2.0, 100.0), 0.0)


def test_burst_then_wait_until_a_token_is_back() -> None:
    # rate 2/s, burst 2: two at once, the third waits half a second.
    bucket, wait = take(None, 0.0, 2.0, 2.0)
    assert wait == 0.0
    bucket, wait = take(bucket, 0.0, 2.0, 2.0)
    assert (bucket, wait) == (Bucket(0.0, 0.0), 0.0)
    refused, wait = take(bucket, 0.0, 2.0, 2.0)
    assert (refused, wait) == (Bucket(0.0, 0.0), 0.5)
    # A quarter second later half a token is back: a quarter second more to wait.
    refused, wait = take(refused, 0.25, 2.0, 2.0)
    assert (refused, wait) == (Bucket(0.5, 0.25), 0.25)
    # Refusals spend nothing: at 0.5 s the token is there.
    bucket, wait = take(refused, 0.5, 2.0, 2.0)
    assert (bucket, wait) == (Bucket(0.0, 0.5), 0.0)


def test_tokens_never_pile_up_beyond_the_burst() -> None:
    bucket, _ = take(None, 0.0, rate=10.0, burst=3.0)
    bucket, _ = take(bucket, 3600.0, rate=10.0, burst=3.0)  # an hour idle
    assert bucket == Bucket(2.0, 3600.0)


@pytest.mark.parametrize(("rate", "burst", "seconds"), [(1.0, 1.0, 10), (5.0, 10.0, 4)])
def test_sustained_rate_is_the_refill_rate(rate: float, burst: float, seconds: int) -> None:
    # Knock every millisecond for `seconds`: burst + rate * seconds get through.
    bucket, passed = None, 0
    for ms in range(seconds * 1000 + 1):
        bucket, wait = take(bucket, ms / 1000, rate, burst)
        passed += wait == 0.0
    assert passed == burst + rate * seconds


# -- the limiter ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_clients_have_their_own_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock=clock)
    assert [limiter.check("a") for _ in range(3)] == [0.0, 0.0, 1.0]
    assert limiter.check("b") == 0.0
    clock.now += 1.0
    assert limiter.check("a") == 0.0


def test_forgetting_quiet_clients_keeps_the_table_bounded_and_decisions_same() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, max_clients=100, clock=clock)
    limiter.check("busy")
    limiter.check("busy")
    for i in range(100):
        limiter.check(f"once-{i}")
    clock.now += 5.0  # everyone's bucket has refilled
    limiter.check("new")
    assert len(limiter.buckets) <= 100
    assert "busy" not in limiter.buckets  # forgotten, and a full bucket is what it would be
    assert [limiter.check("busy") for _ in range(3)] == [0.0, 0.0, 1.0]
    # A flood of new clients inside one refill period still cannot grow the table.
    for i in range(1000):
        limiter.check(f"flood-{i}")
    assert len(limiter.buckets) <= 100


def test_limiter_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0.0, 5)
    with pytest.raises(ValueError):
        RateLimiter(1.0, 0)


# -- who a request counts against ------------------------------------------------------------


def scope(headers: dict[str, str], client: tuple[str, int] | None = ("10.0.0.7", 5000)) -> Any:
    return {
        "type": "http",
        "path": "/v1/orders",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": client,
    }


def test_client_is_the_token_subject_else_the_address() -> None:
    keys = ClientKeys(SecretStr(SECRET))
    assert keys.of(scope(bearer("alice"))) == "sub:alice"
    assert keys.of(scope(bearer("alice"), client=("10.9.9.9", 1))) == "sub:alice"
    assert keys.of(scope({})) == "addr:10.0.0.7"
    assert keys.of(scope({}, client=None)) == "addr:unknown"
    # A subject the caller made up (wrong secret), or garbage, counts as the address.
    forged = bearer("bob", secret="someone-elses-secret-of-32-bytes!!")
    assert keys.of(scope(forged)) == "addr:10.0.0.7"
    assert keys.of(scope({"Authorization": "Bearer not-a-jwt"})) == "addr:10.0.0.7"
    assert keys.of(scope({"Authorization": "Basic YWxpY2U6eA=="})) == "addr:10.0.0.7"


def test_each_token_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = ratelimit.verify_token

    def counting(token: str, secret: str) -> Any:
        calls.append(token)
        return real(token, secret)

    monkeypatch.setattr(ratelimit, "verify_token", counting)
    keys = ClientKeys(SecretStr(SECRET), max_tokens=2)
    alice, bob, carol = bearer("alice"), bearer("bob"), bearer("carol")
    for _ in range(5):
        assert keys.of(scope(alice)) == "sub:alice"
    assert len(calls) == 1
    keys.of(scope(bob))
    keys.of(scope(carol))  # the cache is full: it starts again
    assert len(keys.subjects) <= 2


# -- through the app --------------------------------------------------------------------------

TIGHT = {"MOMENTUM_RATE_LIMIT_PER_SECOND": 0.001, "MOMENTUM_RATE_LIMIT_BURST": 2}
PRODUCT = {"sku": "tee-m", "name": "Tee", "price": "10.00", "currency": "BRL", "seller_id": "s"}


async def test_a_client_past_its_rate_gets_429_with_retry_after() -> None:
    async with running_gateway(FakeReader(products={"tee-m": PRODUCT}), **TIGHT) as gw:
        alice = bearer("alice")
        codes = [(await gw.client.get("/v1/products/tee-m", headers=alice)).status_code]
        codes.append((await gw.client.get("/v1/products/tee-m", headers=alice)).status_code)
        refused = await gw.client.get("/v1/products/tee-m", headers=alice)
        assert codes == [200, 200]
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "too many requests" in refused.json()["detail"]
        # Commands too, before the body is even read; nothing reaches Kafka.
        put = await gw.client.put(
            "/v1/products/tee-m",
            json={"name": "Tee", "price": "1.00", "currency": "BRL"},
            headers=bearer("alice", "seller"),
        )
        assert put.status_code == 429 and gw.producer.sent == []

        # Other clients are not affected.
        assert (await gw.client.get("/v1/products/tee-m", headers=bearer("bob"))).status_code == 200
        assert (await gw.client.get("/health")).status_code == 200


async def test_unauthenticated_clients_are_told_apart_by_address() -> None:
    async with running_gateway(**TIGHT) as gw:

        def from_address(host: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=gw.app, client=(host, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://gateway")

        async with from_address("10.0.0.1") as first, from_address("10.0.0.2") as second:
            codes = [(await first.get("/v1/products/tee-m")).status_code for _ in range(3)]
            assert codes == [401, 401, 429]
            assert (await second.get("/v1/products/tee-m")).status_code == 401


async def test_rate_zero_turns_the_per_client_limit_off() -> None:
    settings = {"MOMENTUM_RATE_LIMIT_PER_SECOND": 0, "MOMENTUM_RATE_LIMIT_BURST": 1}
    async with running_gateway(FakeReader(products={"tee-m": PRODUCT}), **settings) as gw:
        for _ in range(5):
            response = await gw.client.get("/v1/products/tee-m", headers=bearer("alice"))
            assert response.status_code == 200


class BlockingReader(FakeReader):
    """Product reads wait until released: requests that stay in flight."""

    def __init__(self) -> None:
        super().__init__(products={"tee-m": PRODUCT})
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def read(
        self, view: str, key: str, model: type[M], *, query: str | None = None
    ) -> M | None:
        self.entered.set()
        await self.release.wait()
        return await super().read(view, key, model, query=query)


async def test_past_the_in_flight_limit_requests_get_503_at_once() -> None:
    reader = BlockingReader()
    async with running_gateway(reader, MOMENTUM_MAX_IN_FLIGHT=1) as gw:
        slow = asyncio.create_task(gw.client.get("/v1/products/tee-m", headers=bearer("alice")))
        await reader.entered.wait()
        # The gateway is full: another client is answered at once, not queued.
        refused = await gw.client.get("/v1/products/tee-m", headers=bearer("bob"))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "overloaded" in refused.json()["detail"]
        assert (await gw.client.get("/health")).status_code == 200  # liveness still answers
        reader.release.set()
        assert (await slow).status_code == 200
        # The slot is free again.
        after = await gw.client.get("/v1/products/tee-m", headers=bearer("bob"))
        assert after.status_code == 200
