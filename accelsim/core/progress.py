"""Progress bars for anything that takes over a second (tqdm, on stderr, off when not a TTY
unless ACCELSIM_PROGRESS=1)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(total: int, desc: str, unit: str = "it") -> Iterator[Callable[[int], None]]:
    """Yields `update(done)`, taking the number of items done so far; the rate is shown in
    `unit`s per second (a sweep: points/s)."""
    enabled = sys.stderr.isatty() or os.environ.get("ACCELSIM_PROGRESS") == "1"
    if not enabled:
        yield lambda done: None
        return
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        mininterval=0.5,
    )
    state = {"done": 0}

    def update(done: int) -> None:
        bar.update(done - state["done"])
        state["done"] = done

    try:
        yield update
    finally:
        bar.close()
