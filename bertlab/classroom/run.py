"""``python -m bertlab run`` and ``refresh``: execute one notebook, as a run or in place.

``run NOTEBOOK [-p name value ...]``: one notebook, parameters checked.

Every name is checked against the notebook's `parameters` cell (a typo lists the valid
names) and every value is cast to the annotated type (a wrong type is an error). The
executed copy and the metrics JSON go under ``runs/`` unless the user gives `metrics_path`,
which is resolved against the user's working directory.

``refresh NOTEBOOK ...`` re-executes notebooks in place for committing: each runs from a
fresh kernel in the profile that ``auto`` picks on this machine (``laptop`` on a CPU unless
BERTLAB_PROFILE is set), then papermill metadata, widget state and timings are stripped, so
the committed outputs come from one clean run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bertlab.classroom import notebooks
from bertlab.errors import BertlabError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="a notebook path, or its number such as 03")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="set a parameter (repeatable)")
    parser.add_argument("--out", default="", help="where to write the executed notebook")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")


def run(notebook: str, given: dict[str, str], out: str = "", timeout: int = 1800,
        run_dir: Path | None = None) -> dict:
    """Run one notebook; return {"notebook", "output", "metrics_path", "seconds", "ok", "error"}."""
    path = notebooks.find(notebook)
    params = notebooks.cast_parameters(path, given)
    run_dir = run_dir or notebooks.RUNS / path.stem
    if "metrics_path" in params and params["metrics_path"]:
        params["metrics_path"] = str(Path(os.getcwd(), params["metrics_path"]).resolve())
    elif "metrics_path" in notebooks.parameters(path):
        params["metrics_path"] = str((run_dir / "metrics.json").resolve())
    output = Path(out).resolve() if out else (run_dir / path.name).resolve()
    t0 = time.perf_counter()
    error = ""
    try:
        notebooks.execute(path, output, params, timeout=timeout)
    except Exception as err:  # papermill re-raises the cell's error; keep one line of it
        error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
    return {
        "notebook": path.stem,
        "output": str(output),
        "metrics_path": params.get("metrics_path", ""),
        "seconds": round(time.perf_counter() - t0, 1),
        "ok": not error,
        "error": error,
    }


def main(args: argparse.Namespace) -> int:
    given = dict(args.parameter)
    result = run(args.notebook, given, out=args.out, timeout=args.timeout)
    if not result["ok"]:
        raise BertlabError(
            f"{result['notebook']} failed after {result['seconds']} s: {result['error']} "
            f"(see {notebooks.display_path(result['output'])})"
        )
    print(f"{result['notebook']}: ok in {result['seconds']} s; notebook: {notebooks.display_path(result['output'])}"
          + (f"; metrics: {notebooks.display_path(result['metrics_path'])}" if result["metrics_path"] else ""))
    return 0


def refresh_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", nargs="+", help="notebook paths or numbers")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")


def refresh_main(args: argparse.Namespace) -> int:
    for name in args.notebook:
        path = notebooks.find(name)
        t0 = time.perf_counter()
        notebooks.refresh(path, timeout=args.timeout)
        print(f"{path.name}: refreshed in {time.perf_counter() - t0:.1f} s")
    return 0
