"""State of the embedded schema registry: subjects, versions, global ids, compatibility levels.

`MemoryStore` holds the state and enforces the rules (same schema, same id; a new
version must pass the subject's compatibility level). `KafkaStore` adds durability
the way Confluent Schema Registry does it: every change is a record in a compacted,
single-partition topic (`_schemas`), acknowledged by the broker before the caller
is answered, and the state is rebuilt by replaying that topic at start-up. Only one
registry process may write a given topic (there is no leader election).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import avro.errors
import avro.name
import avro.schema
import fastavro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from core.end_offsets import end_offsets
from core.retrying import exponential_backoff, retry
from schemas.errors import RegistryError

log = logging.getLogger(__name__)

DEFAULT_COMPATIBILITY = "BACKWARD"
# Deepest JSON nesting a schema may have (each object or array is a level; a record
# nested in a record's field is three). Parsing, the compatibility check and the
# clients' parsers recurse per level; at this depth (about 40 nested records) they
# stay far below Python's recursion limit. Deeper schemas are refused with 422,
# where they used to end in a RecursionError and a 500.
MAX_SCHEMA_DEPTH = 128
# Between attempts to load the `_schemas` topic: 0.2, 0.4, 0.8, ... 5 s.
LOAD_BACKOFF = exponential_backoff(first=0.2, cap=5.0)
COMPATIBILITY_LEVELS = frozenset(
    {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
)


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(version: object) -> RegistryError:
    return RegistryError(404, 40402, f"Version {version} not found.")


def schema_not_found(detail: str = "Schema not found") -> RegistryError:
    return RegistryError(404, 40403, detail)


def config_not_found(subject: str) -> RegistryError:
    return RegistryError(
        404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
    )


def invalid_schema(detail: str) -> RegistryError:
    return RegistryError(422, 42201, f"Invalid schema: {detail}")


def invalid_version(version: object) -> RegistryError:
    return RegistryError(
        422,
        42202,
        f"The specified version '{version}' is not a valid version id. "
        'Allowed values are between [1, 2^31-1] and the string "latest"',
    )


def invalid_compatibility(level: object) -> RegistryError:
    valid = ", ".join(sorted(level.lower() for level in COMPATIBILITY_LEVELS))
    return RegistryError(
        422, 42203, f"Invalid compatibility level {level!r}. Valid values are {valid}"
    )


@dataclass(frozen=True)
class Reference:
    """A named type that a schema takes from another subject's version."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True)
class StoredSchema:
    id: int
    schema: str
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class SubjectVersion:
    subject: str
    version: int
    id: int


def parse_references(raw: object) -> tuple[Reference, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid_schema("references must be a list")
    try:
        return tuple(
            Reference(name=str(r["name"]), subject=str(r["subject"]), version=int(r["version"]))
            for r in raw
        )
    except (TypeError, KeyError, ValueError) as exc:
        raise invalid_schema(f"malformed reference: {exc}") from exc


def json_depth(value: Any) -> int:
    """How deeply objects and arrays nest in a parsed JSON value (iterative, any depth)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def too_deep() -> RegistryError:
    return invalid_schema(f"schema nested deeper than {MAX_SCHEMA_DEPTH} levels")


def load_schema_json(schema: str) -> Any:
    """The schema text as JSON; 422 when it is not JSON or nests too deeply."""
    try:
        parsed = json.loads(schema)
    except RecursionError as exc:  # deeper than Python's parser goes
        raise too_deep() from exc
    except json.JSONDecodeError as exc:
        raise invalid_schema(str(exc)) from exc
    if json_depth(parsed) > MAX_SCHEMA_DEPTH:
        raise too_deep()
    return parsed


def identity(schema: str, references: Sequence[Reference]) -> str:
    """The key under which two registrations count as the same schema.

    Normalised JSON (key order and whitespace ignored) rather than Avro's Parsing
    Canonical Form: PCF drops logicalType, precision, scale and defaults, so
    decimal(10,2) and plain bytes would share an id and readers would decode
    with the wrong logical type.
    """
    parsed = load_schema_json(schema)
    refs = [r.to_json() for r in references]
    return json.dumps({"schema": parsed, "references": refs}, sort_keys=True, separators=(",", ":"))


def readable_by(reader: avro.schema.Schema, writer: avro.schema.Schema) -> list[str]:
    """Why `reader` cannot read data written with `writer` (empty when it can)."""
    # The checker memoises per instance, so a fresh one per pair keeps results independent.
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    try:
        result = checker.get_compatibility(reader, writer)
    except RecursionError as exc:  # a backstop: load_schema_json bounds the depth
        raise too_deep() from exc
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    where = ", ".join(sorted(result.locations))
    return [f"{message} (at {where})" for message in sorted(result.messages)] or [
        f"incompatible at {where}"
    ]


def check_compatibility(
    candidate: avro.schema.Schema, existing: Sequence[avro.schema.Schema], level: str
) -> list[str]:
    """Problems that stop `candidate` from following `existing` (oldest first) under `level`."""
    if level == "NONE" or not existing:
        return []
    against = existing if level.endswith("_TRANSITIVE") else existing[-1:]
    problems: list[str] = []
    for old in against:
        if level.startswith(("BACKWARD", "FULL")):
            problems += readable_by(candidate, old)
        if level.startswith(("FORWARD", "FULL")):
            problems += readable_by(old, candidate)
    return problems


def parse_version(version: str | int) -> int | None:
    """A version number, or None for the latest ("latest" or -1, as the real registry takes)."""
    if version == "latest":
        return None
    try:
        number = int(version)
    except ValueError:
        raise invalid_version(version) from None
    if number == -1:
        return None
    if not 1 <= number <= 2**31 - 1:
        raise invalid_version(version)
    return number


def schema_key(subject: str, version: int) -> dict[str, Any]:
    # The record layout of Confluent's own `_schemas` topic, so the topic reads familiarly.
    return {"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}


def config_key(subject: str | None) -> dict[str, Any]:
    return {"keytype": "CONFIG", "subject": subject, "magic": 0}


class MemoryStore:
    """Registry state in memory: the store for unit tests and the base of `KafkaStore`.

    Every change goes through `_write(key, value)` then `apply(key, value)`, the
    same path a replay takes, so a restarted `KafkaStore` ends in the same state.
    """

    def __init__(self) -> None:
        # Reentrant: register() holds it across compatibility checks and the write.
        self._lock = threading.RLock()
        self._ready = threading.Event()
        self._ready.set()
        self.load_error: str | None = None
        self._reset()

    def _reset(self) -> None:
        self._schemas: dict[int, StoredSchema] = {}
        self._ids: dict[str, int] = {}
        self._subjects: dict[str, dict[int, int]] = {}
        self._configs: dict[str | None, str] = {}
        self._parsed: dict[int, avro.schema.Schema] = {}

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        """Begin serving; the memory store has nothing to load."""

    def close(self) -> None:
        """Release resources; nothing to release in memory."""

    def _require_ready(self) -> None:
        if not self._ready.is_set():
            raise RegistryError(503, 50001, "The schema store is still loading from Kafka")

    def _write(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        self.apply(key, value)

    def apply(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        """Apply one record of the store's log; unknown record types are skipped."""
        with self._lock:
            keytype = key.get("keytype")
            if keytype == "SCHEMA":
                self._apply_schema(key, value)
            elif keytype == "CONFIG":
                subject = key.get("subject")
                if value is None or "compatibilityLevel" not in value:
                    self._configs.pop(subject, None)
                else:
                    self._configs[subject] = str(value["compatibilityLevel"])

    def _apply_schema(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        subject, version = str(key["subject"]), int(key["version"])
        versions = self._subjects.setdefault(subject, {})
        if value is None or value.get("deleted"):
            versions.pop(version, None)
            if not versions:
                del self._subjects[subject]
            return
        references = parse_references(value.get("references"))
        stored = StoredSchema(int(value["id"]), str(value["schema"]), references)
        self._schemas.setdefault(stored.id, stored)
        self._ids.setdefault(identity(stored.schema, references), stored.id)
        versions[version] = stored.id

    # Parsing

    def _parse(self, schema: str, references: Sequence[Reference]) -> avro.schema.Schema:
        """Validate a schema (with its references) and parse it for compatibility checks."""
        names = avro.name.Names()
        named: dict[str, Any] = {}
        try:
            self._load_references(references, names, named, set())
            data = load_schema_json(schema)
            # fastavro checks defaults, which avro does not; the clients serialise with fastavro.
            fastavro.schema.parse_schema(data, named, _write_hint=False)
            with warnings.catch_warnings():
                # avro warns (does not raise) on odd logical types and then ignores them.
                warnings.simplefilter("ignore")
                return avro.schema.make_avsc_object(data, names)
        except (
            avro.errors.AvroException,
            fastavro.schema.SchemaParseException,
            fastavro.schema.UnknownType,
            json.JSONDecodeError,
            TypeError,
            ValueError,
            KeyError,
            AttributeError,
        ) as exc:
            raise invalid_schema(str(exc) or type(exc).__name__) from exc
        except RecursionError as exc:  # a backstop: load_schema_json bounds the depth
            raise too_deep() from exc

    def _load_references(
        self,
        references: Sequence[Reference],
        names: avro.name.Names,
        named: dict[str, Any],
        seen: set[tuple[str, int]],
    ) -> None:
        for ref in references:
            if (ref.subject, ref.version) in seen:
                continue
            seen.add((ref.subject, ref.version))
            schema_id = self._subjects.get(ref.subject, {}).get(ref.version)
            if schema_id is None:
                raise invalid_schema(
                    f"reference {ref.name} to {ref.subject}/{ref.version} not found"
                )
            stored = self._schemas[schema_id]
            self._load_references(stored.references, names, named, seen)
            data = json.loads(stored.schema)
            fastavro.schema.parse_schema(data, named, _write_hint=False)
            avro.schema.make_avsc_object(data, names)

    def _parsed_by_id(self, schema_id: int) -> avro.schema.Schema:
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            stored = self._schemas[schema_id]
            parsed = self._parsed[schema_id] = self._parse(stored.schema, stored.references)
        return parsed

    # Schemas and subjects

    def register(self, subject: str, schema: str, references: Sequence[Reference] = ()) -> int:
        """Register a schema under a subject and return its global id."""
        with self._lock:
            self._require_ready()
            existing_id = self._ids.get(identity(schema, references))
            versions = self._subjects.get(subject, {})
            if existing_id is not None and existing_id in versions.values():
                return existing_id
            candidate = self._parse(schema, references)
            level = self._compatibility(subject)
            history = [self._parsed_by_id(versions[v]) for v in sorted(versions)]
            problems = check_compatibility(candidate, history, level)
            if problems:
                raise RegistryError(
                    409,
                    409,
                    f"Schema being registered is incompatible with an earlier schema for "
                    f"subject '{subject}' ({level}): {'; '.join(problems)}",
                )
            schema_id = (
                existing_id if existing_id is not None else max(self._schemas, default=0) + 1
            )
            version = max(versions, default=0) + 1
            value: dict[str, Any] = {
                "subject": subject,
                "version": version,
                "id": schema_id,
                "schema": schema,
                "deleted": False,
            }
            if references:
                value["references"] = [r.to_json() for r in references]
            self._write(schema_key(subject, version), value)
            log.info("registered %s version %d as id %d", subject, version, schema_id)
            return schema_id

    def lookup(
        self, subject: str, schema: str, references: Sequence[Reference] = ()
    ) -> tuple[SubjectVersion, StoredSchema]:
        """The version under which this schema is registered in the subject."""
        with self._lock:
            self._require_ready()
            versions = self._subjects.get(subject)
            if not versions:
                raise subject_not_found(subject)
            schema_id = self._ids.get(identity(schema, references))
            matches = [v for v, sid in versions.items() if sid == schema_id]
            if not matches:
                self._parse(schema, references)  # an invalid schema is 42201, not "not found"
                raise schema_not_found()
            version = min(matches)
            return SubjectVersion(subject, version, versions[version]), self._schemas[
                versions[version]
            ]

    def schema(self, schema_id: int) -> StoredSchema:
        with self._lock:
            self._require_ready()
            stored = self._schemas.get(schema_id)
            if stored is None:
                raise schema_not_found(f"Schema {schema_id} not found")
            return stored

    def versions_of_id(self, schema_id: int) -> list[SubjectVersion]:
        with self._lock:
            self.schema(schema_id)
            return [
                SubjectVersion(subject, version, sid)
                for subject, versions in sorted(self._subjects.items())
                for version, sid in sorted(versions.items())
                if sid == schema_id
            ]

    def subjects(self) -> list[str]:
        with self._lock:
            self._require_ready()
            return sorted(self._subjects)

    def versions(self, subject: str) -> list[int]:
        with self._lock:
            self._require_ready()
            versions = self._subjects.get(subject)
            if not versions:
                raise subject_not_found(subject)
            return sorted(versions)

    def version(self, subject: str, version: str | int) -> tuple[SubjectVersion, StoredSchema]:
        with self._lock:
            self._require_ready()
            wanted = parse_version(version)
            versions = self._subjects.get(subject)
            if not versions:
                raise subject_not_found(subject)
            number = max(versions) if wanted is None else wanted
            if number not in versions:
                raise version_not_found(number)
            schema_id = versions[number]
            return SubjectVersion(subject, number, schema_id), self._schemas[schema_id]

    def test_compatibility(
        self,
        subject: str,
        schema: str,
        references: Sequence[Reference] = (),
        version: str | int | None = None,
    ) -> list[str]:
        """Problems registering `schema` would meet: against one version, or (None) all."""
        with self._lock:
            self._require_ready()
            candidate = self._parse(schema, references)
            level = self._compatibility(subject)
            if version is None:
                versions = self._subjects.get(subject, {})
                ids = [versions[v] for v in sorted(versions)]
            else:
                ids = [self.version(subject, version)[0].id]
            return check_compatibility(candidate, [self._parsed_by_id(i) for i in ids], level)

    # Compatibility configuration

    def _compatibility(self, subject: str) -> str:
        return self._configs.get(subject) or self._configs.get(None) or DEFAULT_COMPATIBILITY

    def get_compatibility(self, subject: str | None = None, default_to_global: bool = False) -> str:
        """The level for a subject (40408 if it has none, unless asked to fall back) or global."""
        with self._lock:
            self._require_ready()
            if subject is None:
                return self._configs.get(None) or DEFAULT_COMPATIBILITY
            if default_to_global:
                return self._compatibility(subject)
            level = self._configs.get(subject)
            if level is None:
                raise config_not_found(subject)
            return level

    def set_compatibility(self, level: object, subject: str | None = None) -> str:
        if not isinstance(level, str) or level.upper() not in COMPATIBILITY_LEVELS:
            raise invalid_compatibility(level)
        with self._lock:
            self._require_ready()
            self._write(config_key(subject), {"compatibilityLevel": level.upper()})
            return level.upper()


def _encode(record: dict[str, Any] | None) -> bytes | None:
    return None if record is None else json.dumps(record, separators=(",", ":")).encode()


class KafkaStore(MemoryStore):
    """A `MemoryStore` whose every change is first written to, and replayed from, a topic."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = "_schemas",
        timeout: float = 10.0,
        end_offsets_from_fetch: bool = False,
    ) -> None:
        super().__init__()
        self._ready.clear()
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.timeout = timeout
        # The broker's ListOffsets end may fall short of the log end (Tansu's does):
        # replay to the end a fetch's high watermark says (see core.end_offsets).
        self.end_offsets_from_fetch = end_offsets_from_fetch
        self._stopping = threading.Event()
        self._loader: threading.Thread | None = None
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "acks": "all",
                "linger.ms": 0,
                # A message librdkafka has given up on is a definite failure, so an
                # answered error never turns into a record that appears later.
                "message.timeout.ms": int(timeout * 1000),
            }
        )

    def start(self) -> None:
        self._loader = threading.Thread(target=self._load_until_ready, name="schemas-load")
        self._loader.daemon = True
        self._loader.start()

    def close(self) -> None:
        self._stopping.set()
        if self._loader is not None:
            # Short: a loader waiting on an absent broker is a daemon and may be left behind.
            self._loader.join(timeout=2)
        self._producer.flush(self.timeout)

    def _load_until_ready(self) -> None:
        def report(exc: BaseException, delay: float) -> None:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.warning("loading %s failed, retrying in %.1fs: %s", self.topic, delay, exc)

        try:
            count = retry(
                self._load,
                # The broker may not be up yet: any failure is retried until close().
                retry_on=lambda _exc: not self._stopping.is_set(),
                wait=LOAD_BACKOFF,
                on_retry=report,
                sleep=self._stopping.wait,  # close() cuts the wait short
            )
        except Exception:
            return  # closed before the store was loaded: nothing is served any more
        self.load_error = None
        self._ready.set()
        log.info(
            "loaded %d records from %s: %d schemas, %d subjects",
            count,
            self.topic,
            len(self._schemas),
            len(self._subjects),
        )

    def _ensure_topic(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        metadata = admin.list_topics(timeout=self.timeout)
        existing = metadata.topics.get(self.topic)
        if existing is not None and existing.error is None:
            if len(existing.partitions) != 1:
                # Ids come from replaying in order, which only one partition guarantees.
                raise RuntimeError(f"topic {self.topic} must have exactly one partition")
            return
        new = NewTopic(self.topic, 1, 1, config={"cleanup.policy": "compact"})
        try:
            admin.create_topics([new])[self.topic].result(timeout=self.timeout)
            log.info("created topic %s", self.topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def _load(self) -> int:
        """Rebuild the state from the topic, up to its end as of now; the record count."""
        self._ensure_topic()
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                # librdkafka wants a group id even for assign(); nothing is committed.
                "group.id": f"schema-registry-{self.topic}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        count = 0
        try:
            partition = KafkaTopicPartition(self.topic, 0)
            low, _ = consumer.get_watermark_offsets(partition, timeout=self.timeout)
            high = end_offsets(
                {"bootstrap.servers": self.bootstrap_servers},
                [(self.topic, 0)],
                from_fetch=self.end_offsets_from_fetch,
                timeout=self.timeout,
            )[(self.topic, 0)]
            with self._lock:
                self._reset()
                if high <= low:
                    return 0
                consumer.assign([KafkaTopicPartition(self.topic, 0, OFFSET_BEGINNING)])
                last_progress = time.monotonic()
                while not self._stopping.is_set():
                    message = consumer.poll(0.5)
                    if message is None:
                        if time.monotonic() - last_progress > self.timeout:
                            raise TimeoutError(f"no records from {self.topic} before offset {high}")
                        continue
                    if message.error():
                        raise KafkaException(message.error())
                    last_progress = time.monotonic()
                    count += 1
                    self._apply_raw(message.key(), message.value())
                    offset = message.offset()
                    # Offsets may have gaps after compaction, hence >= rather than ==.
                    if offset is not None and offset >= high - 1:
                        return count
                raise RuntimeError("stopped while loading")
        finally:
            consumer.close()

    def _apply_raw(self, key: bytes | None, value: bytes | None) -> None:
        try:
            decoded_key = json.loads(key) if key else None
            decoded_value = json.loads(value) if value else None
            if isinstance(decoded_key, dict):
                self.apply(decoded_key, decoded_value)
        except (ValueError, KeyError, TypeError, RegistryError) as exc:
            log.warning("skipping unreadable record in %s: %s", self.topic, exc)

    def _write(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        outcome: list[KafkaError | None] = []
        self._producer.produce(
            self.topic,
            key=_encode(key),
            value=_encode(value),
            on_delivery=lambda err, _msg: outcome.append(err),
        )
        # Writes are serialised by the store's lock, so flush waits for this record only.
        self._producer.flush(self.timeout + 5)
        if not outcome:
            raise RegistryError(500, 50002, f"Timed out writing to {self.topic}")
        if outcome[0] is not None:
            raise RegistryError(500, 50001, f"Error writing to {self.topic}: {outcome[0]}")
        self.apply(key, value)
