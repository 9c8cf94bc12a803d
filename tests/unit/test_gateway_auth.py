"""Bearer token checks: every way a token can be bad is a 401, a wrong role a 403."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway import auth
from gateway.auth import InvalidToken, Principal, Role, issue_token, verify_token
from tests.support.gateway import SECRET, bearer, running_gateway

PRODUCT_URL = "/v1/products/tee-m"
PRODUCT = {"name": "Tee", "price": "10.00", "currency": "BRL"}
ORDER = {"items": [{"sku": "tee-m", "quantity": 1}], "payment": {"method": "card", "token": "t"}}


def test_issued_token_verifies_to_its_subject_and_role() -> None:
    token = issue_token("sam", "seller", 60, SECRET)
    assert verify_token(token, SECRET) == Principal("sam", Role.SELLER)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert 59 <= claims["exp"] - time.time() <= 61


@pytest.mark.parametrize(
    ("sub", "role", "ttl"), [("sam", "superuser", 60), ("", "seller", 60), ("sam", "seller", 0)]
)
def test_issue_token_refuses_bad_arguments(sub: str, role: str, ttl: int) -> None:
    with pytest.raises(ValueError):
        issue_token(sub, role, ttl, SECRET)


def test_verify_token_says_why() -> None:
    expired = jwt.encode({"sub": "a", "role": "admin", "exp": 1}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(expired, SECRET)
    with pytest.raises(InvalidToken, match="signature"):
        verify_token(issue_token("a", "admin", 60, "other-secret-of-at-least-32-bytes"), SECRET)


BAD_HEADERS = {
    "missing": {},
    "not bearer": {"Authorization": "Basic YWxpY2U6cHc="},
    "bearer without token": {"Authorization": "Bearer"},
    "garbage": {"Authorization": "Bearer not.a.jwt"},
    "bad signature": bearer(secret="another-secret-of-at-least-32-bytes"),
    "expired": bearer(exp=int(time.time()) - 10),
    "no exp": bearer(exp=None),
    "no sub": bearer(sub=None),
    "no role": bearer(role=None),
    "unknown role": bearer(role="superuser"),
    "empty sub": bearer(sub=""),
    "numeric sub": bearer(sub=42),
    "none algorithm": {
        "Authorization": "Bearer "
        + jwt.encode({"sub": "a", "role": "admin", "exp": 2**40}, "", algorithm="none")
    },
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
async def test_bad_tokens_are_401_with_www_authenticate(case: str) -> None:
    async with running_gateway() as gw:
        response = await gw.client.get(PRODUCT_URL, headers=BAD_HEADERS[case])
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "url", "body", "role"),
    [
        ("PUT", PRODUCT_URL, PRODUCT, "customer"),
        ("POST", "/v1/inventory/tee-m/restock", {"quantity": 1}, "customer"),
        ("POST", "/v1/orders", ORDER, "seller"),
        ("POST", "/v1/orders", ORDER, "admin"),
        ("POST", "/v1/orders/6d0f3b1c-2a4e-5b7d-9c8e-4f1a2b3c4d5e/cancel", None, "seller"),
    ],
)
async def test_wrong_role_is_403(method: str, url: str, body: object, role: str) -> None:
    headers = bearer("someone", role) | {"Idempotency-Key": "k1"}
    async with running_gateway() as gw:
        response = await gw.client.request(method, url, json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert "role" in response.json()["detail"]
    assert gw.producer.sent == []


async def test_auth_is_checked_before_validation() -> None:
    async with running_gateway() as gw:
        response = await gw.client.put(PRODUCT_URL, json={"price": "nope"})
    assert response.status_code == 401


async def test_health_and_ready_need_no_token() -> None:
    async with running_gateway() as gw:
        assert (await gw.client.get("/health")).json() == {"status": "ok"}
        assert (await gw.client.get("/ready")).status_code != 401


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_verified_tokens_checks_a_token_once_while_it_is_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = auth._verify_claims

    def counting(token: str, secret: str) -> tuple[Principal, float]:
        calls.append(token)
        return real(token, secret)

    monkeypatch.setattr(auth, "_verify_claims", counting)
    cache = auth.VerifiedTokens(clock=Clock(time.time()))
    token = issue_token("cat", "customer", 60, SECRET)
    assert [cache.verify(token, SECRET) for _ in range(3)] == [Principal("cat", Role.CUSTOMER)] * 3
    assert calls == [token]


def test_verified_tokens_honours_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = auth._verify_claims

    def counting(token: str, secret: str) -> tuple[Principal, float]:
        calls.append(token)
        return real(token, secret)

    monkeypatch.setattr(auth, "_verify_claims", counting)
    clock = Clock(time.time())
    cache = auth.VerifiedTokens(clock=clock)
    token = issue_token("cat", "customer", 60, SECRET)
    exp = jwt.decode(token, SECRET, algorithms=["HS256"])["exp"]
    cache.verify(token, SECRET)
    clock.now = exp - 0.001
    cache.verify(token, SECRET)
    assert len(calls) == 1
    # From exp on, the remembered answer is not used: the token is checked again
    # (PyJWT's rule: valid while now < exp), which says "token expired" once it is.
    clock.now = exp
    cache.verify(token, SECRET)
    assert len(calls) == 2


def test_verified_tokens_keeps_secrets_apart_and_invalid_tokens_out() -> None:
    cache = auth.VerifiedTokens()
    token = issue_token("cat", "customer", 60, SECRET)
    assert cache.verify(token, SECRET).sub == "cat"
    with pytest.raises(InvalidToken, match="signature"):
        cache.verify(token, "another-secret-of-at-least-32-bytes")
    with pytest.raises(InvalidToken):
        cache.verify("not.a.jwt", SECRET)
    assert list(cache.valid) == [(SECRET, token)]


def test_verified_tokens_is_bounded() -> None:
    cache = auth.VerifiedTokens(max_tokens=3)
    for i in range(10):
        cache.verify(issue_token(f"c{i}", "customer", 60, SECRET), SECRET)
    assert len(cache.valid) <= 3
