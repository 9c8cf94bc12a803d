"""The schema registry's REST API over the in-memory store: ids, versions, compatibility, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from momentum.registry_server import CONTENT_TYPE, create_app
from momentum.registry_store import MAX_SCHEMA_DEPTH, MemoryStore, json_depth
from schemas.errors import RegistryError
from schemas.registry import SchemaRegistryClient


def record(*fields: dict[str, Any], name: str = "Order") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "momentum", "fields": fields})


ORDER_ID = {"name": "order_id", "type": "string"}
QUANTITY = {"name": "quantity", "type": "int"}
NOTE_WITH_DEFAULT = {"name": "note", "type": ["null", "string"], "default": None}
NOTE_NO_DEFAULT = {"name": "note", "type": "string"}
AMOUNT_2DP: dict[str, Any] = {
    "name": "amount",
    "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
}
AMOUNT_3DP: dict[str, Any] = {
    "name": "amount",
    "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 3},
}
AMOUNT_BYTES: dict[str, Any] = {"name": "amount", "type": "bytes"}

V1 = record(ORDER_ID, QUANTITY)


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(MemoryStore()))


def register(client: TestClient, subject: str, schema: str) -> Any:
    return client.post(
        f"/subjects/{subject}/versions",
        json={"schema": schema, "schemaType": "AVRO"},
        headers={"Content-Type": CONTENT_TYPE},
    )


def assert_error(response: Any, status: int, error_code: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    body = response.json()
    assert body["error_code"] == error_code
    assert body["message"]


def test_register_returns_id_with_registry_content_type(client: TestClient) -> None:
    response = register(client, "orders-value", V1)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert response.json() == {"id": 1}


def test_same_schema_same_id_across_subjects_and_formatting(client: TestClient) -> None:
    first = register(client, "orders-value", V1).json()["id"]
    reformatted = json.dumps(json.loads(V1), indent=2, sort_keys=True)
    assert register(client, "orders-value", reformatted).json()["id"] == first
    assert register(client, "orders.dlq-value", V1).json()["id"] == first
    # Re-registering makes no new version.
    assert client.get("/subjects/orders-value/versions").json() == [1]
    assert client.get("/subjects/orders.dlq-value/versions").json() == [1]


def test_logical_types_are_not_collapsed(client: TestClient) -> None:
    ids = {
        register(client, f"s{i}-value", record(ORDER_ID, amount)).json()["id"]
        for i, amount in enumerate([AMOUNT_2DP, AMOUNT_3DP, AMOUNT_BYTES])
    }
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("second", "status"),
    [
        (record(ORDER_ID, QUANTITY, NOTE_WITH_DEFAULT), 200),  # added field with default
        (record(ORDER_ID), 200),  # removed field: the new reader ignores it
        (record(ORDER_ID, {"name": "quantity", "type": "long"}), 200),  # int promotes to long
        (record(ORDER_ID, QUANTITY, NOTE_NO_DEFAULT), 409),  # added field without default
        (record(ORDER_ID, {"name": "quantity", "type": "string"}), 409),  # type change
        (record(ORDER_ID, QUANTITY, name="Other"), 409),  # renamed record
    ],
)
def test_new_version_must_be_backward_compatible(
    client: TestClient, second: str, status: int
) -> None:
    assert register(client, "orders-value", V1).json() == {"id": 1}
    response = register(client, "orders-value", second)
    if status == 200:
        assert response.json() == {"id": 2}
        assert client.get("/subjects/orders-value/versions").json() == [1, 2]
    else:
        assert_error(response, 409, 409)
        assert client.get("/subjects/orders-value/versions").json() == [1]


@pytest.mark.parametrize(
    "schema",
    [
        "not json",
        json.dumps({"type": "record", "name": "Order"}),  # no fields
        record({"name": "x", "type": "strin"}),  # unknown type
        record({"name": "x", "type": "int", "default": "nope"}),  # default of the wrong type
        json.dumps({"type": "enum", "name": "State", "symbols": ["A", "A"]}),
    ],
)
def test_invalid_schema_is_42201(client: TestClient, schema: str) -> None:
    assert_error(register(client, "orders-value", schema), 422, 42201)
    assert client.get("/subjects").json() == []


def test_request_without_schema_or_with_other_type_is_42201(client: TestClient) -> None:
    assert_error(client.post("/subjects/s/versions", json={}), 422, 42201)
    body = {"schema": "{}", "schemaType": "PROTOBUF"}
    assert_error(client.post("/subjects/s/versions", json=body), 422, 42201)


def test_get_schema_by_id(client: TestClient) -> None:
    schema_id = register(client, "orders-value", V1).json()["id"]
    response = client.get(f"/schemas/ids/{schema_id}", params={"subject": "x", "format": "y"})
    assert response.json() == {"schema": V1}
    assert client.get(f"/schemas/ids/{schema_id}/versions").json() == [
        {"subject": "orders-value", "version": 1}
    ]
    assert_error(client.get("/schemas/ids/99"), 404, 40403)


def test_subjects_versions_and_latest(client: TestClient) -> None:
    v2 = record(ORDER_ID, QUANTITY, NOTE_WITH_DEFAULT)
    register(client, "orders-value", V1)
    register(client, "orders-value", v2)
    register(client, "carts-key", '"string"')
    assert client.get("/subjects").json() == ["carts-key", "orders-value"]
    assert client.get("/subjects", params={"subjectPrefix": "ord"}).json() == ["orders-value"]
    assert client.get("/subjects/orders-value/versions").json() == [1, 2]
    for version in ("latest", "2", "-1"):
        assert client.get(f"/subjects/orders-value/versions/{version}").json() == {
            "subject": "orders-value",
            "version": 2,
            "id": 2,
            "schema": v2,
        }
    assert client.get("/subjects/orders-value/versions/1").json()["schema"] == V1
    assert client.get("/subjects/orders-value/versions/1/schema").json() == json.loads(V1)


def test_lookup_schema_under_subject(client: TestClient) -> None:
    register(client, "orders-value", V1)
    path = "/subjects/orders-value?normalize=False&deleted=False"
    assert client.post(path, json={"schema": V1}).json() == {
        "subject": "orders-value",
        "version": 1,
        "id": 1,
        "schema": V1,
    }
    assert_error(client.post(path, json={"schema": record(ORDER_ID)}), 404, 40403)
    assert_error(client.post("/subjects/nope", json={"schema": V1}), 404, 40401)


@pytest.mark.parametrize(
    ("path", "status", "error_code"),
    [
        ("/subjects/nope/versions", 404, 40401),
        ("/subjects/nope/versions/latest", 404, 40401),
        ("/subjects/orders-value/versions/7", 404, 40402),
        ("/subjects/orders-value/versions/0", 422, 42202),
        ("/subjects/orders-value/versions/first", 422, 42202),
        ("/schemas/ids/42", 404, 40403),
        ("/schemas/ids/abc", 422, 422),
        ("/no/such/path", 404, 404),
        ("/config/orders-value", 404, 40408),
    ],
)
def test_not_found_and_invalid_requests(
    client: TestClient, path: str, status: int, error_code: int
) -> None:
    register(client, "orders-value", V1)
    assert_error(client.get(path), status, error_code)


@pytest.mark.parametrize(
    ("candidate", "compatible"),
    [
        (record(ORDER_ID, QUANTITY, NOTE_WITH_DEFAULT), True),
        (record(ORDER_ID, QUANTITY, NOTE_NO_DEFAULT), False),
        (record(ORDER_ID, {"name": "quantity", "type": "string"}), False),
    ],
)
def test_compatibility_endpoint(client: TestClient, candidate: str, compatible: bool) -> None:
    register(client, "orders-value", V1)
    for version in ("latest", "1"):
        response = client.post(
            f"/compatibility/subjects/orders-value/versions/{version}?verbose=True",
            json={"schema": candidate},
        )
        assert response.json()["is_compatible"] is compatible
        assert bool(response.json()["messages"]) is not compatible
    assert client.get("/subjects/orders-value/versions").json() == [1]  # nothing registered


def test_compatibility_endpoint_errors(client: TestClient) -> None:
    register(client, "orders-value", V1)
    body = {"schema": V1}
    assert_error(client.post("/compatibility/subjects/nope/versions/latest", json=body), 404, 40401)
    assert_error(
        client.post("/compatibility/subjects/orders-value/versions/3", json=body), 404, 40402
    )
    assert_error(
        client.post("/compatibility/subjects/orders-value/versions/1", json={"schema": "{"}),
        422,
        42201,
    )


@pytest.mark.parametrize(
    ("level", "second", "status"),
    [
        ("NONE", record(ORDER_ID, {"name": "quantity", "type": "string"}), 200),
        ("BACKWARD", record(ORDER_ID, QUANTITY, NOTE_NO_DEFAULT), 409),
        ("FORWARD", record(ORDER_ID, QUANTITY, NOTE_NO_DEFAULT), 200),  # old reader ignores it
        ("FORWARD", record(ORDER_ID), 409),  # old reader needs quantity
        ("FULL", record(ORDER_ID, QUANTITY, NOTE_WITH_DEFAULT), 200),
        ("FULL", record(ORDER_ID, QUANTITY, NOTE_NO_DEFAULT), 409),
    ],
)
def test_subject_compatibility_level(
    client: TestClient, level: str, second: str, status: int
) -> None:
    assert client.put("/config/orders-value", json={"compatibility": level.lower()}).json() == {
        "compatibility": level
    }
    assert client.get("/config/orders-value").json() == {"compatibilityLevel": level}
    register(client, "orders-value", V1)
    assert register(client, "orders-value", second).status_code == status


def test_global_config(client: TestClient) -> None:
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert client.get("/config/x", params={"defaultToGlobal": "true"}).json() == {
        "compatibilityLevel": "BACKWARD"
    }
    assert client.put("/config", json={"compatibility": "NONE"}).json() == {"compatibility": "NONE"}
    assert client.get("/config").json() == {"compatibilityLevel": "NONE"}
    assert_error(client.put("/config", json={"compatibility": "SIDEWAYS"}), 422, 42203)


def test_transitive_level_checks_every_version(client: TestClient) -> None:
    with_note = record(ORDER_ID, QUANTITY, NOTE_NO_DEFAULT)
    without_note = record(ORDER_ID, QUANTITY)
    back_with_default = record(ORDER_ID, QUANTITY, {"name": "note", "type": "int", "default": 0})
    client.put("/config/s", json={"compatibility": "BACKWARD_TRANSITIVE"})
    assert register(client, "s", with_note).status_code == 200
    assert register(client, "s", without_note).status_code == 200
    # Readable from v2 (note defaults) but not from v1 (note was a string).
    assert_error(register(client, "s", back_with_default), 409, 409)
    client.put("/config/s", json={"compatibility": "BACKWARD"})
    assert register(client, "s", back_with_default).status_code == 200


def test_references_resolve_named_types(client: TestClient) -> None:
    money = json.dumps(
        {
            "type": "record",
            "name": "Money",
            "namespace": "momentum",
            "fields": [{"name": "units", "type": "long"}],
        }
    )
    register(client, "money", money)
    order = record(ORDER_ID, {"name": "total", "type": "momentum.Money"})
    refs = [{"name": "momentum.Money", "subject": "money", "version": 1}]
    response = client.post(
        "/subjects/orders-value/versions", json={"schema": order, "references": refs}
    )
    assert response.json() == {"id": 2}
    assert client.get("/schemas/ids/2").json() == {"schema": order, "references": refs}
    missing = client.post("/subjects/orders-value/versions", json={"schema": order})
    assert_error(missing, 422, 42201)


def test_root_and_health(client: TestClient) -> None:
    assert client.get("/").json() == {}
    assert client.get("/health").status_code == 200
    assert client.get("/schemas/types").json() == ["AVRO"]


def test_requests_wait_for_the_store_to_load() -> None:
    store = MemoryStore()
    store._ready.clear()  # as a Kafka store is until it has replayed its topic
    client = TestClient(create_app(store))
    assert client.get("/health").status_code == 503
    assert_error(client.get("/subjects"), 503, 50001)


# Deeply nested schemas: 422 with a reason, never a RecursionError and a 500.


def nested_records(levels: int) -> str:
    """`levels` records, each the type of the one field of the next (built as text:
    `json.dumps` itself recurses)."""
    schema = '{"type": "record", "name": "R0", "fields": [{"name": "f", "type": "int"}]}'
    for i in range(1, levels):
        schema = (
            f'{{"type": "record", "name": "R{i}", "fields": [{{"name": "f", "type": {schema}}}]}}'
        )
    return schema


def nested_arrays(levels: int) -> str:
    return '{"type": "array", "items": ' * levels + '"int"' + "}" * levels


def test_json_depth_counts_objects_and_arrays() -> None:
    assert [json_depth(v) for v in ("int", [], {"a": 1}, {"a": [{}]}, [[[1]]])] == [0, 1, 1, 3, 3]
    assert json_depth(json.loads(nested_records(10))) == 30


@pytest.mark.parametrize(
    "schema",
    [
        nested_records(50),
        nested_records(5000),
        nested_arrays(MAX_SCHEMA_DEPTH + 1),
        nested_arrays(100_000),
    ],
    ids=["records-50", "records-5000", "arrays-over-limit", "arrays-100000"],
)
@pytest.mark.parametrize(
    "path",
    [
        "/subjects/deep-value/versions",
        "/subjects/deep-value",
        "/compatibility/subjects/deep-value/versions",
    ],
)
def test_schema_nested_too_deeply_is_422_with_a_reason(
    client: TestClient, path: str, schema: str
) -> None:
    register(client, "deep-value", V1)
    response = client.post(path, json={"schema": schema})
    assert_error(response, 422, 42201)
    assert f"nested deeper than {MAX_SCHEMA_DEPTH} levels" in response.json()["message"]
    assert client.get("/subjects/deep-value/versions").json() == [1]


def test_schemas_up_to_the_limit_register_and_evolve(client: TestClient) -> None:
    deepest = nested_arrays(MAX_SCHEMA_DEPTH)
    assert json_depth(json.loads(deepest)) == MAX_SCHEMA_DEPTH
    assert register(client, "arrays-value", deepest).json() == {"id": 1}
    records = nested_records(MAX_SCHEMA_DEPTH // 3)
    assert register(client, "records-value", records).status_code == 200
    # The compatibility check walks both schemas: int -> long at the bottom is allowed.
    evolved = records.replace('"type": "int"', '"type": "long"')
    assert register(client, "records-value", evolved).json() == {"id": 3}


def test_request_body_nested_too_deeply_is_400_with_a_reason(client: TestClient) -> None:
    body = '{"schema": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post("/subjects/deep-value/versions", content=body)
    assert_error(response, 400, 400)
    assert "nested too deeply" in response.json()["message"]


def test_the_client_raises_the_error_the_registry_answered(client: TestClient) -> None:
    registry = SchemaRegistryClient("http://registry")
    registry._http = client  # the stand-in's app in process, behind the client's calls
    with pytest.raises(RegistryError) as caught:
        registry.register("orders-value", "{not json")
    error = caught.value
    assert (error.http_status, error.error_code) == (422, 42201)
    assert error.message.startswith("Invalid schema")
    assert str(error).startswith("schema registry answered 422: Invalid schema")


def test_the_client_reads_an_answer_without_confluents_body() -> None:
    registry = SchemaRegistryClient("http://registry")
    registry._http = httpx.Client(
        base_url="http://registry",
        transport=httpx.MockTransport(lambda _: httpx.Response(503, text="proxy down")),
    )
    with pytest.raises(RegistryError) as caught:
        registry.subjects()
    error = caught.value
    assert (error.http_status, error.error_code, error.message) == (503, 503, "proxy down")
