"""``python -m bertlab course``: run every notebook headless and print a one-screen summary.

This is what ``make course`` runs. Each notebook is executed with papermill into
``runs/course/`` (its metrics JSON beside it), in the chosen profile (``auto``: ``laptop``
on a CPU); a failure is recorded and the course goes on. At the end: a table of notebook,
profile, seconds, headline metrics and pass/fail, and an HTML report for a browser.
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


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    paths = selected(args.only)
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
