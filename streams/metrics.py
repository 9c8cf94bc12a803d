"""Counters for the worker's /metrics/ page, in Prometheus text format."""

from __future__ import annotations

from collections import Counter

_counters: Counter[tuple[str, ...]] = Counter()


def count(name: str, *labels: str, by: int = 1) -> None:
    _counters[(name, *labels)] += by


LABELS = {"processed": ("topic",), "dead_letters": ("topic", "error"), "sent": ("topic",)}


def render() -> str:
    lines = []
    for (name, *values), total in sorted(_counters.items()):
        keys = LABELS.get(name, tuple(f"l{i}" for i in range(len(values))))
        labels = ",".join(f'{k}="{v}"' for k, v in zip(keys, values, strict=False))
        lines.append(f"momentum_{name}_total{{{labels}}} {total}")
    return "\n".join(lines) + "\n"
