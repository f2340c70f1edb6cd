"""``python -m bertlab run`` and ``refresh``: execute one notebook, as a run or in place.

``run NOTEBOOK [-p name value ...]``: one notebook, parameters checked.

Every name is checked against the notebook's `parameters` cell (a typo lists the valid
names) and every value is cast to the annotated type (a wrong type is an error). The
executed copy and the metrics JSON go under ``runs/`` unless the user gives `metrics_path`,
which is resolved against the user's working directory. ``--out FILE.ipynb`` never writes
into notebooks/ and replaces an existing file only with ``--overwrite``; `metrics_path`
replaces an earlier metrics JSON, but any other file only with ``--overwrite`` and never a
notebook (`bertlab.results.check_output`). Both are checked before the kernel starts. A
failed cell is reported in one line (a bare ``assert`` of the notebook is quoted).

``refresh NOTEBOOK ...`` re-executes notebooks in place for committing: each runs from a
fresh kernel in the profile that ``auto`` picks on this machine (``laptop`` on a CPU unless
BERTLAB_PROFILE is set), then papermill metadata, widget state and timings are stripped, so
the committed outputs come from one clean run.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import Any

from bertlab import results
from bertlab.classroom import notebooks
from bertlab.errors import BertlabError, ParameterError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="a notebook path, or its number such as 03")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="set a parameter (repeatable)")
    parser.add_argument("--out", default="", help="where to write the executed notebook "
                        "(default runs/NAME/NAME.ipynb, replaced by the next run)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing file that --out or -p metrics_path names")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")


def check_out(out: str, source: Path, overwrite: bool = False) -> Path:
    """The resolved --out; one sentence if it is the notebook itself or lies in notebooks/,
    is a folder, is not an .ipynb file, or is an existing file without `overwrite`."""
    output = Path(out).expanduser().resolve()
    if output == source.resolve() or output.is_relative_to(notebooks.NOTEBOOKS.resolve()):
        raise ParameterError(f"--out {out} is a teacher notebook or in their folder notebooks/, which a run "
                             "never writes to; write the run elsewhere (leave out --out for runs/), or "
                             f"re-execute the notebook in place with python -m bertlab refresh {source.name[:2]}.")
    if output.is_dir():
        raise ParameterError(f"--out {out} is a folder; give the notebook file to write, such as {source.name}.")
    if output.suffix != ".ipynb":
        raise ParameterError(f"--out {out} must be a notebook file ending in .ipynb.")
    if output.exists() and not overwrite:
        raise ParameterError(f"--out {out} already exists; pass --overwrite to replace it, or give another file.")
    return output


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure(err: Exception) -> str:
    """What a failed run's cell did, in one line: "cell 45 raised TypeError: ...", or for a
    bare `assert` of the notebook, the check that did not hold."""
    if type(err).__name__ == "CellExecutionError":  # nbclient's (refresh), by name as papermill's
        return f"a cell raised {err.ename}: {str(err.evalue).strip()[:300]}"
    if type(err).__name__ != "PapermillExecutionError":  # by name: papermill loads only to execute
        text = str(err).strip()
        return f"{type(err).__name__}: {text.splitlines()[-1] if text else ''}"
    cell: Any = err
    where = f"cell {cell.exec_count or cell.cell_index + 1}"
    if cell.ename == "AssertionError" and not str(cell.evalue).strip():
        arrows = [m[1] for line in cell.traceback for m in
                  re.finditer(r"^-*> *\d+ (.*)$", _ANSI.sub("", line), flags=re.MULTILINE)]
        lines = [t.strip() for t in arrows] or [t.strip() for t in cell.source.splitlines()
                                                 if t.strip().startswith("assert")]
        check = lines[-1][:160] if lines else "an assert"
        return f"the notebook's own check in {where} did not hold with these parameters: `{check}`"
    return f"{where} raised {cell.ename}: {str(cell.evalue).strip()[:300]}"


def run(notebook: str, given: dict[str, str], out: str = "", timeout: int = 1800,
        run_dir: Path | None = None, overwrite: bool = False) -> dict:
    """Run one notebook; return {"notebook", "output", "metrics_path", "seconds", "ok", "error"}."""
    path = notebooks.find(notebook)
    params = notebooks.cast_parameters(path, given)
    output = check_out(out, path, overwrite) if out else None
    run_dir = run_dir or notebooks.RUNS / path.stem
    if "metrics_path" in params and params["metrics_path"]:
        label = f"-p metrics_path {params['metrics_path']}"
        params["metrics_path"] = str(Path(os.getcwd(), params["metrics_path"]).resolve())
    elif "metrics_path" in notebooks.parameters(path):
        label = f"the metrics file {notebooks.display_path(run_dir / 'metrics.json')}"
        params["metrics_path"] = str((run_dir / "metrics.json").resolve())
    if params.get("metrics_path"):  # the kernel writes it: check it before the kernel starts
        results.check_output(params["metrics_path"], label, results.has_keys("_meta"), overwrite)
    output = output or (run_dir / path.name).resolve()
    t0 = time.perf_counter()
    error = ""
    try:
        notebooks.execute(path, output, params, timeout=timeout)
    except Exception as err:  # papermill re-raises the cell's error; keep one line of it
        error = failure(err)
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
    result = run(args.notebook, given, out=args.out, timeout=args.timeout, overwrite=args.overwrite)
    if not result["ok"]:
        hint = (" Try values nearer the notebook's defaults," if given and "own check" in result["error"]
                else " Fix the cause,")
        raise BertlabError(
            f"{result['notebook']} failed after {result['seconds']} s: {result['error']}.{hint} and see "
            f"the executed notebook {notebooks.display_path(result['output'])} for the cell's output."
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
        try:
            notebooks.refresh(path, timeout=args.timeout)
        except Exception as err:  # nbclient's, by name: it is imported only to execute
            if type(err).__name__ not in ("CellExecutionError", "CellTimeoutError", "DeadKernelError"):
                raise
            raise BertlabError(f"{path.name} was not refreshed: {failure(err)}; the file is left as it was. Fix the notebook "
                               f"(python -m bertlab run {path.stem[:2]} shows the failing cell) and refresh it again.") from None
        print(f"{path.name}: refreshed in {time.perf_counter() - t0:.1f} s")
    return 0
