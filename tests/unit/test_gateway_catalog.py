"""Products and inventory routes: the commands they send (with who asks) and the state they read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.topics import INVENTORY_COMMANDS
from schemas.messages import RESTOCK, UPSERT_PRODUCT
from tests.support.gateway import FakeReader, bearer, error_locs, running_gateway

SELLER = bearer("sam", "seller")
PRODUCT = {"name": "Tee", "price": "12.34", "currency": "BRL"}


async def test_upsert_product_sends_upsert_keyed_by_sku() -> None:
    async with running_gateway() as gw:
        response = await gw.client.put(
            "/v1/products/tee-m", json=PRODUCT | {"low_stock_threshold": 3}, headers=SELLER
        )
        assert response.status_code == 202, response.text
        [(key, command)] = gw.commands(INVENTORY_COMMANDS)
        assert response.json() == {
            "sku": "tee-m",
            "accepted": True,
            "command_id": command["command_id"],
        }
    assert key == "tee-m"
    assert command["sku"] == "tee-m"
    assert abs(command["issued_at"] - datetime.now(UTC)) < timedelta(seconds=5)
    assert command["payload"] == (
        UPSERT_PRODUCT,
        {
            "name": "Tee",
            "price": Decimal("12.34"),
            "currency": "BRL",
            "seller_id": "sam",
            "low_stock_threshold": 3,
            "role": "SELLER",
            "transfer_to": None,
        },
    )


async def test_numeric_price_and_default_threshold() -> None:
    async with running_gateway() as gw:
        body = {"name": "Mug", "price": 7.5, "currency": "USD"}
        response = await gw.client.put(
            "/v1/products/mug", json=body, headers=bearer("root", "admin")
        )
        assert response.status_code == 202, response.text
        [(_, command)] = gw.commands(INVENTORY_COMMANDS)
    name, payload = command["payload"]
    assert payload["price"] == Decimal("7.50")
    assert payload["low_stock_threshold"] == 5
    assert (payload["seller_id"], payload["role"], payload["transfer_to"]) == (
        "root",
        "ADMIN",
        None,
    )


async def test_each_command_gets_its_own_id() -> None:
    async with running_gateway() as gw:
        for _ in range(2):
            await gw.client.put("/v1/products/tee-m", json=PRODUCT, headers=SELLER)
        ids = {command["command_id"] for _, command in gw.commands(INVENTORY_COMMANDS)}
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (PRODUCT | {"price": "12.345"}, "price"),
        (PRODUCT | {"price": "0"}, "price"),
        (PRODUCT | {"price": -1}, "price"),
        (PRODUCT | {"price": "ten"}, "price"),
        (PRODUCT | {"currency": "brl"}, "currency"),
        (PRODUCT | {"currency": "BRLX"}, "currency"),
        (PRODUCT | {"name": ""}, "name"),
        (PRODUCT | {"low_stock_threshold": -1}, "low_stock_threshold"),
        ({"price": "1.00", "currency": "BRL"}, "name"),
        (PRODUCT | {"colour": "red"}, "colour"),
    ],
)
async def test_invalid_product_is_422_naming_the_field(body: dict[str, object], field: str) -> None:
    async with running_gateway() as gw:
        response = await gw.client.put("/v1/products/tee-m", json=body, headers=SELLER)
        assert ("body", field) in error_locs(response)
        assert gw.producer.sent == []


@pytest.mark.parametrize("sku", ["has space", "x" * 65, "semi;colon", "ção"])
async def test_bad_sku_is_422(sku: str) -> None:
    async with running_gateway() as gw:
        response = await gw.client.put(f"/v1/products/{sku}", json=PRODUCT, headers=SELLER)
        assert ("path", "sku") in error_locs(response)


async def test_longest_valid_sku_is_accepted() -> None:
    sku = "A-z_009" + "x" * 57
    async with running_gateway() as gw:
        response = await gw.client.put(f"/v1/products/{sku}", json=PRODUCT, headers=SELLER)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(
            lambda: FakeReader(products={"tee-m": {**PRODUCT, "sku": "tee-m", "seller_id": "x"}}),
            id="another-sellers-product",
        ),
        pytest.param(lambda: FakeReader(down=True), id="worker-down"),
    ],
)
async def test_ownership_is_decided_by_the_inventory_agent_not_by_a_worker_read(
    reader: Callable[[], FakeReader],
) -> None:
    """The gateway's read raced the worker (issue 7: B's PUT after A's create won). Now
    every upsert and restock carries who asks, and the agent owning the sku decides."""
    async with running_gateway(reader()) as gw:
        put = await gw.client.put("/v1/products/tee-m", json=PRODUCT, headers=SELLER)
        restock = await gw.client.post(
            "/v1/inventory/tee-m/restock", json={"quantity": 1}, headers=SELLER
        )
        assert (put.status_code, restock.status_code) == (202, 202)
        assert gw.reader.calls == []
        [(_, upsert), (_, added)] = gw.commands(INVENTORY_COMMANDS)
    assert (upsert["payload"][1]["seller_id"], upsert["payload"][1]["role"]) == ("sam", "SELLER")
    assert added["payload"] == (
        RESTOCK,
        {"quantity": 1, "requested_by": "sam", "role": "SELLER"},
    )


async def test_an_admin_transfers_a_product_only_by_naming_the_seller() -> None:
    admin = bearer("root", "admin")
    async with running_gateway() as gw:
        keep = await gw.client.put("/v1/products/tee-m", json=PRODUCT, headers=admin)
        give = await gw.client.put(
            "/v1/products/tee-m", json=PRODUCT | {"seller_id": "sue"}, headers=admin
        )
        assert (keep.status_code, give.status_code) == (202, 202)
        transfers = [c["payload"][1]["transfer_to"] for _, c in gw.commands(INVENTORY_COMMANDS)]
    assert transfers == [None, "sue"]


async def test_a_seller_may_name_only_itself_as_the_seller() -> None:
    async with running_gateway() as gw:
        other = await gw.client.put(
            "/v1/products/tee-m", json=PRODUCT | {"seller_id": "sue"}, headers=SELLER
        )
        itself = await gw.client.put(
            "/v1/products/tee-m", json=PRODUCT | {"seller_id": "sam"}, headers=SELLER
        )
        assert (other.status_code, itself.status_code) == (403, 202)
        [(_, command)] = gw.commands(INVENTORY_COMMANDS)
    assert command["payload"][1]["transfer_to"] is None


async def test_get_product() -> None:
    reader = FakeReader(
        products={
            "tee-m": {
                "sku": "tee-m",
                "name": "Tee",
                "price": "12.30",
                "currency": "BRL",
                "seller_id": "sam",
            }
        }
    )
    async with running_gateway(reader) as gw:
        found = await gw.client.get("/v1/products/tee-m", headers=bearer())
        missing = await gw.client.get("/v1/products/nope", headers=bearer())
    assert found.status_code == 200
    assert found.json() == {
        "sku": "tee-m",
        "name": "Tee",
        "price": "12.30",
        "currency": "BRL",
        "seller_id": "sam",
    }
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]


async def test_restock_sends_restock_keyed_by_sku() -> None:
    async with running_gateway() as gw:
        response = await gw.client.post(
            "/v1/inventory/tee-m/restock", json={"quantity": 40}, headers=SELLER
        )
        assert response.status_code == 202, response.text
        [(key, command)] = gw.commands(INVENTORY_COMMANDS)
        assert response.json()["command_id"] == command["command_id"]
    assert key == "tee-m"
    assert command["sku"] == "tee-m"
    assert command["payload"] == (
        RESTOCK,
        {"quantity": 40, "requested_by": "sam", "role": "SELLER"},
    )


@pytest.mark.parametrize("quantity", [0, -3, 1.5, "7", True, 2**31])
async def test_bad_restock_quantity_is_422(quantity: object) -> None:
    async with running_gateway() as gw:
        response = await gw.client.post(
            "/v1/inventory/tee-m/restock", json={"quantity": quantity}, headers=SELLER
        )
        assert ("body", "quantity") in error_locs(response)
        assert gw.producer.sent == []


async def test_get_inventory() -> None:
    stock = {"sku": "tee-m", "on_hand": 10, "reserved": 3, "available": 7}
    async with running_gateway(FakeReader(stock={"tee-m": stock})) as gw:
        found = await gw.client.get("/v1/inventory/tee-m", headers=bearer("sam", "seller"))
        missing = await gw.client.get("/v1/inventory/other", headers=bearer())
    assert (found.status_code, found.json()) == (200, stock)
    assert missing.status_code == 404


async def test_worker_down_is_503_with_reason() -> None:
    async with running_gateway(FakeReader(down=True)) as gw:
        response = await gw.client.get("/v1/inventory/tee-m", headers=bearer())
    assert response.status_code == 503
    assert "unavailable" in response.json()["detail"]
    assert response.headers["Retry-After"] == "1"


async def test_kafka_down_is_503() -> None:
    async with running_gateway() as gw:
        gw.producer.down = True
        response = await gw.client.post(
            "/v1/inventory/tee-m/restock", json={"quantity": 1}, headers=SELLER
        )
    assert response.status_code == 503
    assert "Kafka" in response.json()["detail"]
