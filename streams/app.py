"""The worker's entry point: `faust -A streams.app worker -l info`.

The app is built in core.app from the environment (core.settings). Importing
this module registers every flow of streams.flows with it (agents, tables,
timers, web views) and the worker's own pages (streams.web); nothing else
imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

from core import tracing
from core.app import app
from streams import flows

for module in (*flows.flow_modules(), "streams.web"):
    importlib.import_module(module)


@app.on_worker_init.connect
def trace_when_asked(sender: Any, /, *args: Any, **kwargs: Any) -> None:
    """Tracing on in a worker process when an OTLP endpoint is set (core.tracing)."""
    tracing.setup("momentum-worker")


def main() -> None:
    app.main()


if __name__ == "__main__":
    main()
