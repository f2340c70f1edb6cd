"""``python -m bertlab course``: run every notebook headless and print a one-screen summary.

This is what ``make course`` runs. Each notebook is executed with papermill into
``runs/course/`` (its metrics JSON beside it), in the chosen profile (``auto``: ``laptop``
on a CPU); a failure is recorded and the course goes on. At the end: a table of notebook,
profile, seconds, headline metrics and pass/fail, and an HTML report for a browser.
``--out`` is a folder; before the first notebook runs, every file the course will write
there is checked: one a course run did not write is refused (`check_out`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bertlab import results
from bertlab.classroom import notebooks, report
from bertlab.classroom.run import run
from bertlab.env import PROFILES
from bertlab.errors import ParameterError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="auto", choices=PROFILES,
                        help="the profile for every notebook (auto: ci under BERTLAB_PROFILE=ci, "
                             "gpu on CUDA, else laptop)")
    parser.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 00,03")
    parser.add_argument("--out", default=str(notebooks.RUNS / "course"), help="output folder")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")


def selected(only: str) -> list[Path]:
    """The notebooks that ``--only`` names (all of them when it is empty); one sentence for a
    part that is not a number or a number without a notebook."""
    every = sorted(notebooks.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    numbers = [p.name[:2] for p in every]
    parts = [n.strip() for n in only.split(",") if n.strip()]
    if not only:
        return every
    if not parts:
        raise ParameterError(f"--only {only!r} names no notebook; give numbers such as 00,03.")
    wanted = []
    for part in parts:
        if not part.isdigit() or f"{int(part):02d}" not in numbers:
            raise ParameterError(f"--only {only}: {part!r} is not the number of a notebook; give numbers "
                                 f"from {numbers[0]} to {numbers[-1]} separated by commas, such as 00,03.")
        wanted.append(f"{int(part):02d}")
    return [p for p in every if p.name[:2] in wanted]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_summary(path: Path) -> bool:
    """summary.json of a course run: a list of rows, each with "notebook" and "ok"."""
    rows = _read_json(path)
    return isinstance(rows, list) and all(isinstance(r, dict) and {"notebook", "ok"} <= r.keys() for r in rows)


def _is_report(path: Path) -> bool:
    """report.html of a course run: the page `report.write_course_report` writes, by its title."""
    try:
        return "<title>bertlab course run</title>" in path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return False


def _is_executed(path: Path) -> bool:
    """A notebook that papermill executed (papermill's metadata), not a notebook someone wrote."""
    nb = _read_json(path)
    return isinstance(nb, dict) and "papermill" in (nb.get("metadata") or {})


def check_out(out: Path, paths: list[Path]) -> None:
    """Refuse, before any notebook runs, an --out that is a file, or that holds a file this
    command would write (summary.json, report.html, NAME/NAME.ipynb, NAME/metrics.json) which
    no course run wrote."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out} is a file; give a folder for the course's runs, such as runs/course "
                             "(it is created if it does not exist).")
    files = [(out / "summary.json", _is_summary), (out / "report.html", _is_report)]
    for path in paths:
        files += [(out / path.stem / path.name, _is_executed), (out / path.stem / "metrics.json", results.has_keys("_meta"))]
    for file, ours in files:
        results.check_output(file, f"--out {out}: its file {file.relative_to(out)}", ours, example=file.name)


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    paths = selected(args.only)
    check_out(out, paths)
    rows = []
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        given = {} if args.profile == "auto" else {"profile": args.profile}
        result = run(str(path), given, timeout=args.timeout, run_dir=out / path.stem)
        metrics: dict[str, Any] = {}
        if result["metrics_path"] and Path(result["metrics_path"]).exists():
            metrics = json.loads(Path(result["metrics_path"]).read_text())
        result["metrics"] = metrics
        result["profile"] = metrics.get("_meta", {}).get("profile", args.profile)
        rows.append(result)
        print(f"  {'ok' if result['ok'] else 'FAILED'} in {result['seconds']:.1f} s", flush=True)
    print()
    print(report.course_summary(rows))
    results.write_json_atomic(out / "summary.json", rows)
    html = report.write_course_report(rows, out / "report.html")
    print(f"HTML report: {notebooks.display_path(html)}")
    return 0 if all(r["ok"] for r in rows) else 1
