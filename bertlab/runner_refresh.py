"""``python -m bertlab refresh NOTEBOOK ...``: re-execute notebooks in place for committing.

Runs each notebook from a fresh kernel in the profile that ``auto`` picks on this machine
(``laptop`` on a CPU unless BERTLAB_PROFILE is set), then strips papermill metadata, widget
state and timings, so the committed outputs come from one clean run.
"""

from __future__ import annotations

import argparse
import time

from bertlab import notebooks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", nargs="+", help="notebook paths or numbers")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")


def main(args: argparse.Namespace) -> int:
    for name in args.notebook:
        path = notebooks.find(name)
        t0 = time.perf_counter()
        notebooks.refresh(path, timeout=args.timeout)
        print(f"{path.name}: refreshed in {time.perf_counter() - t0:.1f} s")
    return 0
