"""SIGTERM taken as Ctrl-C, and the signal that stopped a command.

Derived for `bertlab.train.fit` (notebook 11) and used by the commands that run long: a
job scheduler or `timeout` sends SIGTERM, which by default kills Python without a word; in
`terminate_as_interrupt` it raises KeyboardInterrupt instead, so the work stops as on
Ctrl-C, saved and with the sentence that says how to go on.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

# the signal behind the last interrupt inside `terminate_as_interrupt` (SIGINT: Ctrl-C), so that
# a command exits as a shell expects: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)
stopped_by = signal.SIGINT


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within this block, SIGTERM raises KeyboardInterrupt, so `fit` stops as on Ctrl-C: checkpointed,
    with the sentence that says how to resume, instead of dying without a word.

    Python lets only the main thread install signal handlers; elsewhere nothing changes. The
    previous handler is put back at the end.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        global stopped_by
        stopped_by = signum
        raise KeyboardInterrupt

    global stopped_by
    stopped_by = signal.SIGINT
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:  # None: a handler installed outside Python, which cannot be put back; the default then
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
