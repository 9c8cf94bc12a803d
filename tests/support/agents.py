"""Fakes for running the agents' handler functions without a broker.

`Wire` stands in for `streams.sending.send/publish` and records what went out;
`FakeTable` for a Faust table (get, set, pop, items, `in`). Every send and every
table write lands in one journal, in the order the agent made them, so a test
can also check that a message's effects went out before its state was stored.
"""

from __future__ import annotations

from typing import Any

import pytest

from streams import sending


class Wire:
    """What the agent sent, as (topic, key, value), and the journal of sends and writes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        self.journal: list[tuple[str, str]] = []

    async def send(self, spec: Any, key: str, value: Any) -> None:
        self.sent.append((spec.name, key, value))
        self.journal.append(("send", spec.name))

    def on(self, topic: str) -> list[Any]:
        """The values sent on `topic`, in order."""
        return [value for name, _, value in self.sent if name == topic]

    def branches(self, topic: str) -> list[str]:
        """The union branch of each envelope sent on `topic`."""
        return [value["payload"][0] for value in self.on(topic)]

    def sent_before_stored(self) -> bool:
        sends = [i for i, (kind, _) in enumerate(self.journal) if kind == "send"]
        writes = [i for i, (kind, _) in enumerate(self.journal) if kind == "write"]
        return not sends or not writes or max(sends) < min(writes)


class FakeTable(dict):  # type: ignore[type-arg]
    """A Faust table as the agents use it; writes are journalled on the wire."""

    def __init__(self, name: str, wire: Wire) -> None:
        super().__init__()
        self.name = name
        self.wire = wire

    def __setitem__(self, key: Any, value: Any) -> None:
        self.wire.journal.append(("write", self.name))
        super().__setitem__(key, value)

    def pop(self, key: Any, default: Any = None) -> Any:
        if key in self:
            self.wire.journal.append(("write", self.name))
        return super().pop(key, default)


def install(monkeypatch: pytest.MonkeyPatch, module: Any, *tables: str) -> Wire:
    """Replace the producer and `module`'s tables by fakes; return the wire."""
    wire = Wire()
    monkeypatch.setattr(sending, "send", wire.send)
    monkeypatch.setattr(sending, "publish", wire.send)
    for name in tables:
        monkeypatch.setattr(module, name, FakeTable(name, wire))
    return wire
