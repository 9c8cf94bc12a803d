"""Avro schemas (the source of truth for every message), their codec and registry client.

Each record lives in `avro/<namespace>.<Name>.avsc`; a file may refer to another
record by its full name, and `load_schema` inlines it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import fastavro.schema

SCHEMA_DIR = Path(__file__).parent / "avro"
NAMESPACE = "momentum"


def full_name(name: str) -> str:
    return name if "." in name else f"{NAMESPACE}.{name}"


@cache
def load_schema(name: str) -> dict[str, Any] | str:
    """The expanded schema (all references inlined) for a record name, or a primitive."""
    if name in ("string", "bytes", "long", "int"):
        return name
    path = SCHEMA_DIR / f"{full_name(name)}.avsc"
    if not path.exists():
        raise KeyError(f"no schema file for {name!r} in {SCHEMA_DIR}")
    schema = fastavro.schema.load_schema(str(path), _write_hint=False)
    assert isinstance(schema, dict)
    return schema


def schema_text(name: str) -> str:
    """The schema as registered with the schema registry (JSON, references inlined)."""
    return json.dumps(load_schema(name), sort_keys=True)


def record_names() -> list[str]:
    return sorted(p.name.removesuffix(".avsc") for p in SCHEMA_DIR.glob("*.avsc"))
