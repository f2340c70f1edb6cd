"""``python -m bertlab sweep NOTEBOOK --grid lr=1e-5,3e-5 --grid seed=0,1 [-p name value]``.

A grid of papermill runs of one notebook: every grid point is one run, its executed
notebook and metrics JSON under ``runs/<sweep-name>/<point>/``. Names and values are
checked against the notebook's parameters cell before anything runs. ``--jobs N`` runs N
points at a time, each kernel with the CPU threads divided between them. At the end: a
``summary.csv``, a plot of one metric against each swept parameter (mean and spread over
seeds), and a self-contained ``report.html``. Rerunning with the same arguments skips the
points that already finished, so an interrupted sweep picks up where it stopped; a sweep
under the same ``--name`` with another notebook, grid or fixed ``-p`` values is refused
(``sweep.json`` records them) unless ``--overwrite`` replaces it. A ``--metric`` that the
first finished point did not record stops the sweep there, naming the metrics it did record.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import itertools
import json
import logging
import multiprocessing
import os
import re
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from bertlab import interrupts, results
from bertlab.classroom import notebooks, report
from bertlab.classroom import run as runner
from bertlab.classroom.sweepplot import comparison_figure
from bertlab.errors import ParameterError

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "NUMEXPR_NUM_THREADS")


# a cell running longer than this stops its point: the longest cell of a laptop run (notebook 11's
# fine-tune, up to 10 minutes with a user's own data) fits, and a hung one (issue 25 saw a widget
# cell of notebook 07 wait for minutes with the kernel idle, not reproduced since) costs less
SWEEP_CELL_TIMEOUT = 900


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", help="a notebook path, or its number such as 03")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="a swept parameter and its values (repeatable)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a fixed parameter (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--metric", default="", help="metric to plot (default: the first recorded)")
    parser.add_argument("--name", default="", help="sweep folder under runs/ (default: from the grid)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a sweep of the same --name made with another notebook, grid or -p values")
    parser.add_argument("--timeout", type=int, default=SWEEP_CELL_TIMEOUT,
                        help=f"seconds a cell may run before its point is stopped and marked failed (default "
                             f"{SWEEP_CELL_TIMEOUT}: a laptop run's longest cell takes minutes, and a cell that hangs "
                             "then costs a sweep 15 minutes, not 30)")


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["lr=1e-5,3e-5", "seed=0,1"]`` -> ``{"lr": ["1e-5", "3e-5"], "seed": ["0", "1"]}``."""
    if not items:
        raise ParameterError("The grid is empty: give at least one --grid NAME=V1,V2,... such as --grid lr=1e-5,3e-5.")
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"--grid {item!r} must look like NAME=V1,V2,... such as lr=1e-5,3e-5.")
        listed = [v.strip() for v in values.split(",") if v.strip()]
        if not listed:
            raise ParameterError(f"--grid {item!r} lists no values; give them as {name}=V1,V2,...")
        if name in grid:
            raise ParameterError(f"--grid names {name} twice; list all its values in one --grid.")
        grid[name] = list(dict.fromkeys(listed))  # drop repeated values, keep the order
    return grid


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def point_name(point: dict[str, str]) -> str:
    """A folder name for one grid point, such as ``lr=3e-05_seed=1``. A value with other
    characters than letters, digits and . + - (or over 24 of them) is shown cleaned and cut,
    then "~" and a hash of the whole value (``sentence=The-cat-sat-on-the-mat.~6d67a445``): two
    values never share a folder, and no name grows past what a file system allows."""
    parts = []
    for k, v in point.items():
        shown = re.sub(r"[^A-Za-z0-9.+-]", "-", v)[:24]
        parts.append(f"{k}={shown}" if shown == v else f"{k}={shown}~{_short_hash(v)}")
    name = "_".join(parts)
    return name if len(name) <= 200 else f"{name[:180]}~{_short_hash(name)}"  # many parameters


def check_arguments(path: Path, grid: dict[str, list[str]], fixed: dict[str, str]) -> dict[str, list[Any]]:
    """Check every name and value against the notebook; return the grid's typed values."""
    declared = notebooks.parameters(path)
    if "metrics_path" not in declared:
        raise ParameterError(f"{path.name} has no metrics_path parameter, so a sweep cannot collect its metrics.")
    if "metrics_path" in grid:
        raise ParameterError("metrics_path cannot be swept: the sweep sets it for each point "
                             "(runs/<sweep>/<point>/metrics.json); drop it from --grid.")
    for name in fixed:
        if name in grid:
            raise ParameterError(f"{name} is both swept (--grid) and fixed (-p); keep one.")
    if "metrics_path" in fixed:
        raise ParameterError("A sweep sets metrics_path itself (runs/<sweep>/<point>/metrics.json); drop -p metrics_path.")
    notebooks.cast_parameters(path, fixed)
    return {name: [notebooks.cast_parameters(path, {name: v})[name] for v in values]
            for name, values in grid.items()}


def check_name(name: str) -> None:
    """A sweep's name is one folder under runs/: no "..", no path, no leading dot."""
    if not re.fullmatch(r"[A-Za-z0-9_=+-][A-Za-z0-9._=+-]*", name):
        raise ParameterError(f"The sweep name {name!r} must be one folder name under runs/: letters, digits "
                             "and . _ = + -, not starting with a dot (so .. cannot leave runs/).")


def claim(sweep_dir: Path, record: dict, overwrite: bool) -> None:
    """Keep `sweep_dir` for this sweep: refuse (or with `overwrite`, clear) a folder that holds
    a sweep of another notebook, grid or fixed parameters; then write its sweep.json."""
    manifest = sweep_dir / "sweep.json"
    if sweep_dir.is_dir() and any(sweep_dir.iterdir()):
        try:
            earlier = json.loads(manifest.read_text())
        except (OSError, ValueError):
            earlier = {}
        if earlier != record:
            if not overwrite:
                what = "; ".join(f"{k} {earlier[k]} (now {record[k]})" for k in record
                                 if earlier.get(k) != record[k] and k in earlier) or "no sweep.json"
                raise ParameterError(f"{notebooks.display_path(sweep_dir)} already holds another sweep ({what}); "
                                     "give another --name, or pass --overwrite to replace it.")
            shutil.rmtree(sweep_dir)
    results.write_json_atomic(manifest, record)


def _limit_threads(threads: int) -> None:
    """Pool initializer: the kernels this worker starts inherit these variables."""
    for var in _THREAD_VARIABLES:
        os.environ[var] = str(threads)


def _run_point(path: str, given: dict[str, str], point_dir: str, timeout: int) -> dict:
    # papermill warns that it cannot parse the course's parameter comments; the names and
    # types were already checked against the notebook, so keep the sweep's output readable
    logging.getLogger("papermill").setLevel(logging.ERROR)
    return runner.run(path, given, timeout=timeout, run_dir=Path(point_dir))


def _finished(point_dir: Path, given: dict[str, str]) -> dict | None:
    """The earlier result of this point if it ran cleanly with the same parameters."""
    try:
        done = json.loads((point_dir / "point.json").read_text())
    except (OSError, ValueError):
        return None
    if done.get("parameters") != given or not done.get("ok") or not (point_dir / "metrics.json").exists():
        return None
    return done


def _metrics(point_dir: Path) -> dict[str, float]:
    try:
        found = results.load(point_dir / "metrics.json")
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in found.items() if not k.startswith("_") and isinstance(v, int | float)}


def _run_all(path: Path, todo: list[tuple[int, dict, Path]], jobs: int, timeout: int,
             on_done: Any) -> None:
    if jobs == 1:
        for index, given, point_dir in todo:
            on_done(index, given, point_dir, _run_point(str(path), given, str(point_dir), timeout))
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_limit_threads, initargs=(threads,)) as pool:
        futures = {pool.submit(_run_point, str(path), given, str(point_dir), timeout):
                   (index, given, point_dir) for index, given, point_dir in todo}
        try:
            for future in as_completed(futures):
                index, given, point_dir = futures[future]
                on_done(index, given, point_dir, future.result())
        except BaseException:  # e.g. a --metric no point records: start no more points
            pool.shutdown(cancel_futures=True)
            raise


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) in a sweep: which points are kept, and how to run the rest."""


def sweep(notebook: str, grid_items: list[str], fixed: dict[str, str] | None = None, jobs: int = 1,
          metric: str = "", name: str = "", timeout: int = SWEEP_CELL_TIMEOUT, runs: Path | None = None,
          overwrite: bool = False) -> dict:
    """Run the grid; return {"dir", "rows", "metric", "summary", "plot", "report"}."""
    fixed = dict(fixed or {})
    path = notebooks.find(notebook)
    grid = parse_grid(grid_items)
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, not {jobs}.")
    typed = check_arguments(path, grid, fixed)
    name = name or f"{path.stem}-sweep-{'-'.join(grid)}"
    check_name(name)
    sweep_dir = (runs or notebooks.RUNS) / name
    claim(sweep_dir, {"notebook": path.name, "grid": grid, "fixed": fixed}, overwrite)
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    rows: list[dict] = [{} for _ in points]
    todo = []
    metric_unchecked = bool(metric)  # until a finished point shows the metrics the notebook records

    def record(index: int, given: dict, point_dir: Path, result: dict, skipped: bool = False) -> None:
        nonlocal metric_unchecked
        point = points[index]
        values = dict(zip(grid, (typed[k][grid[k].index(v)] for k, v in point.items())))
        rows[index] = {"point": point_name(point), **values, "ok": result["ok"],
                       "seconds": result["seconds"], "error": result["error"],
                       **_metrics(point_dir)}
        if not skipped:
            results.write_json_atomic(point_dir / "point.json", {
                "parameters": given, "ok": result["ok"], "seconds": result["seconds"],
                "error": result["error"]})
        state = "done earlier, skipped" if skipped else (
            f"ok in {result['seconds']} s" if result["ok"] else f"FAILED: {result['error']}")
        print(f"[{sum(bool(r) for r in rows)}/{len(points)}] {point_name(point)}: {state}", flush=True)
        if metric_unchecked and result["ok"]:
            recorded = ", ".join(_metrics(point_dir)) or "none"
            if metric not in _metrics(point_dir):
                raise ParameterError(f"--metric {metric} is not among the metrics that the first finished point "
                                     f"({point_name(point)}) recorded: {recorded}; rerun with one of them as "
                                     "--metric (the finished points are kept and skipped).")
            metric_unchecked = False

    for index, point in enumerate(points):
        given = {**fixed, **point}
        point_dir = sweep_dir / point_name(point)
        done = _finished(point_dir, given)
        if done:
            record(index, given, point_dir, done, skipped=True)
        else:
            todo.append((index, given, point_dir))
    try:
        _run_all(path, todo, jobs, timeout, record)
    except KeyboardInterrupt:
        finished = sum(bool(r) and r["ok"] for r in rows)
        raise SweepInterrupted(f"The sweep was interrupted with {finished} of {len(points)} points finished, kept in "
                               f"{notebooks.display_path(sweep_dir)}; run the same command again to run the rest "
                               "(finished points are skipped).") from None
    return _write_outputs(path, sweep_dir, grid, typed, fixed, rows, metric)


def _write_outputs(path: Path, sweep_dir: Path, grid: dict, typed: dict, fixed: dict,
                   rows: list[dict], metric: str) -> dict:
    metric_names = list(dict.fromkeys(k for r in rows for k in r
                                      if k not in ("point", "ok", "seconds", "error", *grid)))
    columns = ["point", *grid, "ok", "seconds", "error", *metric_names]
    summary = sweep_dir / "summary.csv"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    results.write_atomic(summary, text.getvalue())
    metric = metric or (metric_names[0] if metric_names else "")
    plot = None
    if metric in metric_names:
        plot = sweep_dir / f"{metric}.png"
        comparison_figure(rows, typed, metric).savefig(plot, dpi=110, bbox_inches="tight")
    table = [[r.get(c, "") for c in columns] for r in rows]
    settings = [[k, ", ".join(report.fmt(v) for v in vs)] for k, vs in typed.items()]
    settings += [[k, f"{v} (fixed)"] for k, v in fixed.items()]
    sections = [
        ("Parameters", report.html_table(["parameter", "values"], settings)),
        (f"{metric} against each swept parameter",
         report.image_html(plot.read_bytes(), metric) if plot else
         f"<p>No run recorded the metric {metric or '(none)'}.</p>"),
        ("Runs", report.html_table(columns, table)),
    ]
    html = report.write_html(sweep_dir / "report.html", f"Sweep of {path.stem}", sections)
    return {"dir": sweep_dir, "rows": rows, "metric": metric, "metric_names": metric_names,
            "summary": summary, "plot": plot, "report": html}


def main(args: argparse.Namespace) -> int:
    try:
        with interrupts.terminate_as_interrupt():
            out = sweep(args.notebook, args.grid, dict(args.parameter), jobs=args.jobs, metric=args.metric,
                        name=args.name, timeout=args.timeout, overwrite=args.overwrite)
    except SweepInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return 128 + int(interrupts.stopped_by)
    rows, metric = out["rows"], out["metric"]
    columns = ["point", "ok", "seconds"] + ([metric] if metric in out["metric_names"] else [])
    print(report.text_table(columns, [[r.get(c, "") for c in columns] for r in rows]))
    failed = [r["point"] for r in rows if not r["ok"]]
    print(f"{len(rows) - len(failed)} of {len(rows)} runs ok; summary: {notebooks.display_path(out['summary'])}; "
          + (f"plot: {notebooks.display_path(out['plot'])}; " if out["plot"] else "") + f"report: {notebooks.display_path(out['report'])}")
    if args.metric and args.metric not in out["metric_names"]:
        raise ParameterError(f"No run recorded the metric {args.metric!r}; recorded: "
                             f"{', '.join(out['metric_names']) or 'none'}.")
    if failed:
        print(f"failed: {', '.join(failed)} (see their notebooks under {notebooks.display_path(out['dir'])})")
    return 1 if failed else 0
