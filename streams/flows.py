"""The flows the worker runs: the one list of them.

A flow is a package `streams/<flow>/` (see the README, "Adding a flow"). The
worker's entry point, streams.app, imports each listed flow's `agents` (its
agents, timers and the tables they use) and its `views` (its web pages) when
the flow has them; a flow's `__init__.py` says which it lacks.
"""

from __future__ import annotations

import importlib.util

FLOWS = (
    "inventory",
    "orders",
    "payments",
    "carts",
    "notifications",
    "analytics",
    "rejections",
)

# The modules of a flow that register something with the app when imported.
ENTRY_MODULES = ("agents", "views")


def flow_modules(flows: tuple[str, ...] = FLOWS) -> list[str]:
    """The entry modules of `flows` that exist, e.g. `streams.orders.agents`."""
    return [
        f"streams.{flow}.{module}"
        for flow in flows
        for module in ENTRY_MODULES
        if importlib.util.find_spec(f"streams.{flow}.{module}") is not None
    ]
