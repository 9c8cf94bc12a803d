"""Progress for people: a rich spinner on a terminal while long work runs, nothing elsewhere.

The launcher's output also goes to log files and pipes (`momentum up --detach`,
`make run | tee`), where a live display would only write control codes: there
the lines the commands print anyway are the record.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def working(message: str) -> Iterator[Callable[[str], None]]:
    """Show `message` with a spinner until the block ends; yields a function to change it."""
    if not sys.stdout.isatty():
        yield lambda _text: None
        return
    from rich.console import Console

    with Console().status(message, spinner="dots") as status:
        yield lambda text: status.update(text)
