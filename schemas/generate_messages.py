"""Writes `schemas/messages.py`, the typed form of every Avro named type in `schemas/avro/`.

    python -m schemas.generate_messages

The types say what `schemas.codec` reads and writes with fastavro
(`return_record_name=True, return_record_name_override=True`):

- record -> a `TypedDict` of the same name, every field required: a decoded
  record carries every field, and a writer that leaves one out gets the Avro
  default only by fastavro's leniency;
- enum -> a `Literal` of its symbols, and a `<NAME>_SYMBOLS` tuple in schema order;
- `int`, `long` -> `int`; `string` -> `str`; `decimal` -> `Decimal`;
  `timestamp-millis` -> `datetime` (decoded aware, UTC, to the millisecond);
- array -> `list[...]`; map -> `dict[str, ...]`; a union with null -> `X | None`;
  a union of one record and null decodes to the record or None, not a tuple;
- a union of several records -> `(full record name, record)` tuples, typed per
  branch as `tuple[Literal[name], Record]` so that `match` on the name narrows
  the record. Every branch record gets a name constant (`PLACE_ORDER`) and a
  builder (`place_order(...)`) taking every field as a keyword argument. None
  has a default: Avro defaults are for reading data written before a field
  existed, and some mean "refuse this" (`ReturnStock.quantity` 0).

`tests/unit/test_messages_match_schemas.py` fails when the committed module is
not what this writes. The output is laid out the way `ruff format` keeps it.
"""

from __future__ import annotations

import json
import keyword
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import SCHEMA_DIR

OUTPUT = Path(__file__).with_name("messages.py")
LINE = 100
INDENT = "    "

HEADER = '''\
# Generated from schemas/avro/*.avsc by schemas/generate_messages.py: do not edit.
# Regenerate with: python -m schemas.generate_messages
"""Every Avro named type of schemas/avro, typed as schemas.codec reads and writes it.

Records are TypedDicts (plain dicts at run time, checked by mypy) and enums are
Literal aliases. A union of records holds `(full record name, record)` tuples:
match on the name to narrow the record. Each branch record has its name as a
constant and a builder that pairs the two.
"""

from __future__ import annotations
'''

PRIMITIVES = {
    "null": "None",
    "boolean": "bool",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "string": "str",
    "bytes": "bytes",
}
# Logical types fastavro turns into Python objects: the type, and its import.
LOGICAL = {
    "decimal": ("Decimal", "from decimal import Decimal"),
    "timestamp-millis": ("datetime", "from datetime import datetime"),
    "timestamp-micros": ("datetime", "from datetime import datetime"),
    "date": ("date", "from datetime import date"),
    "uuid": ("str", None),
}

Schema = dict[str, Any]


class SchemaError(ValueError):
    """A schema this generator cannot type faithfully."""


@dataclass
class RecordUnion:
    """A field holding one of several records: a type alias of its branch tuples."""

    alias: str  # <Record><Field>, e.g. OrderCommandPayload
    branches: list[str]  # full record names, in schema order
    others: list[str]  # Python types of the branches that are not records


@dataclass
class Field:
    name: str
    type: str
    schema: Schema


class Generator:
    def __init__(self, named: dict[str, Schema]) -> None:
        self.named = named
        self.imports: set[str] = set()
        self.unions: dict[str, list[RecordUnion]] = {}  # by record name

    def fields(self, record: Schema) -> list[Field]:
        out = []
        for f in record["fields"]:
            where = f"{record['name']}.{f['name']}"
            if keyword.iskeyword(f["name"]):
                raise SchemaError(f"{where}: a Python keyword cannot name a field")
            out.append(Field(f["name"], self.python_type(f["type"], where), f))
        return out

    def python_type(self, schema: Any, where: str) -> str:
        """The Python type fastavro reads `schema` as, in the field `where` (Record.field)."""
        if isinstance(schema, list):
            return self.union_type(schema, where)
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return PRIMITIVES[schema]
            if schema not in self.named:
                raise SchemaError(f"{where}: unknown type {schema!r}")
            return short_name(schema)
        if "logicalType" in schema:
            if schema["logicalType"] not in LOGICAL:
                raise SchemaError(f"{where}: logical type {schema['logicalType']!r} is not mapped")
            type_name, import_line = LOGICAL[schema["logicalType"]]
            if import_line:
                self.imports.add(import_line)
            return type_name
        kind = schema["type"]
        if kind == "array":
            return f"list[{self.python_type(schema['items'], where)}]"
        if kind == "map":
            return f"dict[str, {self.python_type(schema['values'], where)}]"
        if kind in ("record", "enum", "fixed"):
            raise SchemaError(f"{where}: define {kind} {schema.get('name')!r} in its own file")
        return self.python_type(kind, where)

    def union_type(self, branches: list[Any], where: str) -> str:
        records = [b for b in branches if self.is_record(b)]
        others = [self.python_type(b, where) for b in branches if not self.is_record(b)]
        if len(records) > 1:
            record_name, field_name = where.split(".")
            alias = record_name + field_name.title().replace("_", "")
            self.unions.setdefault(record_name, []).append(RecordUnion(alias, records, others))
            return alias
        types = [self.python_type(b, where) for b in records] + others
        return " | ".join(sorted(types, key=lambda t: t == "None"))  # None last

    def is_record(self, schema: Any) -> bool:
        return isinstance(schema, str) and self.named.get(schema, {}).get("type") == "record"

    def record_order(self) -> list[str]:
        """Record names, each after the records it refers to (else alphabetical), so a
        union alias, evaluated at import, can follow its branch classes."""
        done: dict[str, None] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in done or not self.is_record(name):
                return
            if name in path:
                raise SchemaError(f"{name} refers to itself")
            for field in self.named[name]["fields"]:
                for ref in sorted(self.references(field["type"])):
                    visit(ref, (*path, name))
            done[name] = None

        for name in sorted(self.named):
            visit(name, ())
        return list(done)

    def references(self, schema: Any) -> set[str]:
        if isinstance(schema, str):
            return {schema} & self.named.keys()
        if isinstance(schema, list):
            return set().union(*map(self.references, schema))
        keys = [k for k in ("type", "items", "values") if k in schema]
        return set().union(*(self.references(schema[k]) for k in keys))

    def render(self) -> str:
        records = [
            (self.named[name], self.fields(self.named[name])) for name in self.record_order()
        ]
        enums = [s for _, s in sorted(self.named.items()) if s["type"] == "enum"]
        unions = [u for schema, _ in records for u in self.unions.get(schema["name"], [])]
        branch_names = sorted({b for u in unions for b in u.branches})

        blocks = [render_enum(s) for s in enums]
        blocks.append([f"{constant(b)}: Final = {json.dumps(b)}" for b in branch_names])
        for schema, fields in records:
            blocks += [render_union(u) for u in self.unions.get(schema["name"], [])]
            blocks.append(render_record(schema, fields))
        fields_of = {full_name(schema): fields for schema, fields in records}
        for union in unions:
            blocks += [render_builder(self.named[b], fields_of[b]) for b in union.branches]

        imports = [*sorted(self.imports), "from typing import Final, Literal, TypeAlias, TypedDict"]
        text = HEADER + "\n" + "\n".join(imports)
        previous = imports
        for block in blocks:
            # As ruff format has it: two blank lines around a class or a function, else one.
            around_definition = any(b[0].startswith(("class ", "def ")) for b in (block, previous))
            text += ("\n\n\n" if around_definition else "\n\n") + "\n".join(block)
            previous = block
        return text + "\n"


def load_named_types() -> dict[str, Schema]:
    """Every named type by full name, as its own file writes it (references not inlined)."""
    named: dict[str, Schema] = {}
    for path in sorted(SCHEMA_DIR.glob("*.avsc")):
        schema = json.loads(path.read_text())
        if full_name(schema) != path.stem:
            raise SchemaError(f"{path.name} defines {full_name(schema)}")
        named[path.stem] = schema
    shorts = [short_name(n) for n in named]
    if len(set(shorts)) != len(shorts):
        raise SchemaError("two named types share a short name, which the Python names are")
    return named


def full_name(schema: Schema) -> str:
    return f"{schema['namespace']}.{schema['name']}"


def short_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", short_name(name)).lower()


def constant(name: str) -> str:
    return snake(name).upper()


def bracketed(head: str, items: list[str], tail: str, indent: str = "") -> list[str]:
    """`head` items `tail` on one line if it fits, else one item a line with a trailing comma."""
    one_line = f"{indent}{head}{', '.join(items)}{tail}"
    if len(one_line) <= LINE:
        return [one_line]
    return [f"{indent}{head}", *(f"{indent}{INDENT}{item}," for item in items), f"{indent}{tail}"]


def wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        " ".join(text.split()),
        LINE,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def comment(text: str, indent: str = "") -> list[str]:
    return wrap(text, f"{indent}# ", f"{indent}# ")


def docstring(text: str, indent: str) -> list[str]:
    text = " ".join(text.split()).replace("\\", "\\\\").replace('"""', '\\"""')
    if text.endswith('"'):
        text += " "
    one_line = f'{indent}"""{text}"""'
    if len(one_line) <= LINE:
        return [one_line]
    return [*wrap(text, f'{indent}"""', indent), f'{indent}"""']


def render_enum(schema: Schema) -> list[str]:
    name = schema["name"]
    symbols = [json.dumps(s) for s in schema["symbols"]]
    return [
        *(comment(schema["doc"]) if "doc" in schema else []),
        *bracketed(f"{name}: TypeAlias = Literal[", symbols, "]"),
        *bracketed(f"{constant(name)}_SYMBOLS: Final[tuple[{name}, ...]] = (", symbols, ")"),
    ]


def render_union(union: RecordUnion) -> list[str]:
    members = [f"tuple[Literal[{json.dumps(b)}], {short_name(b)}]" for b in union.branches]
    members += union.others
    lines = [f"{union.alias}: TypeAlias = {' | '.join(members)}"]
    if len(lines[0]) > LINE:
        lines = [f"{union.alias}: TypeAlias = (", f"{INDENT}{members[0]}"]
        lines += [f"{INDENT}| {m}" for m in members[1:]] + [")"]
    names = [constant(b) for b in union.branches]
    return lines + bracketed(f"{constant(union.alias)}_BRANCHES: Final = (", names, ")")


def render_record(schema: Schema, fields: list[Field]) -> list[str]:
    lines = [f"class {schema['name']}(TypedDict):"]
    if "doc" in schema:
        lines += docstring(schema["doc"], INDENT) + ([""] if fields else [])
    for f in fields:
        lines += comment(f.schema["doc"], INDENT) if "doc" in f.schema else []
        lines.append(f"{INDENT}{f.name}: {f.type}")
    if len(lines) == 1:
        lines.append(f"{INDENT}pass")
    return lines


def render_builder(schema: Schema, fields: list[Field]) -> list[str]:
    name = schema["name"]
    returns = f"tuple[Literal[{json.dumps(full_name(schema))}], {name}]"
    if not fields:
        return [f"def {snake(name)}() -> {returns}:", f"{INDENT}return {constant(name)}, {{}}"]
    params = ["*"] + [f"{f.name}: {f.type}" for f in fields]
    items = [f"{json.dumps(f.name)}: {f.name}" for f in fields]
    return [
        *bracketed(f"def {snake(name)}(", params, f") -> {returns}:"),
        *bracketed(f"body: {name} = {{", items, "}", INDENT),
        f"{INDENT}return {constant(name)}, body",
    ]


def render() -> str:
    """The text of `schemas/messages.py` for the schema files as they are now."""
    return Generator(load_named_types()).render()


def main() -> None:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
