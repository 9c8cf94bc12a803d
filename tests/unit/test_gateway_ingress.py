"""The ingress while workers are down: every command is accepted, only reads answer 503.

Issue 7, section 2: `POST /v1/orders` first asked a worker and answered 503 while it
restarted. Commands now go to Kafka with no worker in the loop; the agents decide
when they are back, and a refusal is readable at `GET /v1/rejections`.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.gateway import FakeReader, bearer, running_gateway

CUSTOMER = bearer("alice", "customer") | {"Idempotency-Key": "k-1"}
SELLER = bearer("sam", "seller")
ADMIN = bearer("root", "admin")
ORDER_ID = str(uuid.uuid4())
CARD = {"method": "card", "token": "tok_ok"}

# Every command route: (method, url, body, headers).
COMMANDS = [
    ("POST", "/v1/orders", {"items": [{"sku": "tee", "quantity": 1}], "payment": CARD}, CUSTOMER),
    ("POST", f"/v1/orders/{ORDER_ID}/cancel", None, CUSTOMER),
    ("POST", f"/v1/orders/{ORDER_ID}/cancel", None, ADMIN),
    ("PUT", "/v1/carts/c1/items/tee", {"quantity": 2}, CUSTOMER),
    ("DELETE", "/v1/carts/c1/items/tee", None, CUSTOMER),
    ("POST", "/v1/carts/c1/checkout", {"payment": CARD}, CUSTOMER),
    ("PUT", "/v1/products/tee", {"name": "Tee", "price": "9.90", "currency": "BRL"}, SELLER),
    ("PUT", "/v1/products/tee", {"name": "Tee", "price": "9.90", "currency": "BRL"}, ADMIN),
    ("POST", "/v1/inventory/tee/restock", {"quantity": 5}, SELLER),
]
READS = [
    f"/v1/orders/{ORDER_ID}",
    "/v1/carts/c1",
    "/v1/products/tee",
    "/v1/inventory/tee",
    "/v1/rejections",
]


@pytest.mark.parametrize(("method", "url", "body", "headers"), COMMANDS)
async def test_every_command_is_accepted_while_no_worker_answers(
    method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> None:
    async with running_gateway(FakeReader(down=True)) as gw:
        response = await gw.client.request(method, url, json=body, headers=headers)
        assert response.status_code == 202, response.text
        assert len(gw.producer.sent) == 1
        # Not one read was even tried.
        assert gw.reader.calls == []
    assert response.json()["command_id"]


@pytest.mark.parametrize("url", READS)
async def test_reads_answer_503_with_retry_after_while_no_worker_answers(url: str) -> None:
    headers = CUSTOMER if url.startswith("/v1/carts") else bearer("alice", "customer")
    async with running_gateway(FakeReader(down=True)) as gw:
        response = await gw.client.get(url, headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"


# The rejections log.

LOG = [
    {
        "command_id": "cmd-2",
        "command": "CANCEL_ORDER",
        "subject": ORDER_ID,
        "reason": "UNKNOWN_ORDER",
        "rejected_at": "2026-11-02T12:00:02+00:00",
    },
    {
        "command_id": "cmd-1",
        "command": "UPSERT_PRODUCT",
        "subject": "race-X",
        "reason": "SKU_OWNED_BY_ANOTHER_SELLER",
        "rejected_at": "2026-11-02T12:00:01+00:00",
    },
]


async def test_the_caller_reads_its_own_rejections_newest_first() -> None:
    reader = FakeReader(rejection_logs={"bob": LOG})
    async with running_gateway(reader) as gw:
        mine = await gw.client.get("/v1/rejections", headers=bearer("bob", "customer"))
        one = await gw.client.get(
            "/v1/rejections", params={"command_id": "cmd-1"}, headers=bearer("bob", "seller")
        )
        nothing = await gw.client.get("/v1/rejections", headers=bearer("alice", "customer"))
    assert mine.status_code == 200
    assert mine.json()["requested_by"] == "bob"
    assert [r["command_id"] for r in mine.json()["rejections"]] == ["cmd-2", "cmd-1"]
    assert mine.json()["rejections"][0]["reason"] == "UNKNOWN_ORDER"
    assert [r["command_id"] for r in one.json()["rejections"]] == ["cmd-1"]
    assert nothing.json() == {"requested_by": "alice", "rejections": []}


async def test_only_admins_read_someone_elses_rejections() -> None:
    reader = FakeReader(rejection_logs={"bob": LOG})
    async with running_gateway(reader) as gw:
        other = await gw.client.get(
            "/v1/rejections", params={"requested_by": "bob"}, headers=bearer("eve", "customer")
        )
        admin = await gw.client.get("/v1/rejections", params={"requested_by": "bob"}, headers=ADMIN)
    assert other.status_code == 403
    assert admin.status_code == 200
    assert len(admin.json()["rejections"]) == 2
