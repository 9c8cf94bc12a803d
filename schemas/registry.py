"""A small client for the Confluent Schema Registry REST API (and our stand-in).

Used at start-up to register every schema and, rarely, to fetch an unknown
writer schema by id; never per message.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from schemas.errors import RegistryError

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryClient:
    def __init__(
        self, url: str, timeout: float = 10.0, auth: tuple[str, str] | None = None
    ) -> None:
        self.url = url.rstrip("/")
        # auth: HTTP basic (user, password), core.kafka_clients.registry_auth.
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, headers={"Content-Type": CONTENT_TYPE}, auth=auth
        )
        self._unknown: set[int] = set()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            status = response.status_code
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):  # not Confluent's `{"error_code", "message"}`
                body = {}
            error_code = body.get("error_code")
            raise RegistryError(
                status,
                error_code if isinstance(error_code, int) else status,
                str(body.get("message", response.text)),
            )
        return response.json()

    def register(self, subject: str, schema: str) -> int:
        body = {"schema": schema, "schemaType": "AVRO"}
        return int(self._call("POST", f"/subjects/{subject}/versions", json=body)["id"])

    def schema_by_id(self, schema_id: int) -> Any | None:
        """The parsed JSON schema for an id, or None if the registry does not know it."""
        if schema_id in self._unknown:
            return None
        try:
            text = self._call("GET", f"/schemas/ids/{schema_id}")["schema"]
        except RegistryError as exc:
            if exc.http_status == 404:
                self._unknown.add(schema_id)
                return None
            raise
        return json.loads(text)

    def subjects(self) -> list[str]:
        return list(self._call("GET", "/subjects"))

    def is_compatible(self, subject: str, schema: str) -> bool:
        body = {"schema": schema, "schemaType": "AVRO"}
        result = self._call("POST", f"/compatibility/subjects/{subject}/versions/latest", json=body)
        return bool(result["is_compatible"])
