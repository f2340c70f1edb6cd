"""The benchmark's loops, its rows and ratios, and the tables made from its JSON files.

Measured in notebook 11 (`bertlab.train.bench` runs the loops). `benchmarks/README.md`
shows one table per committed JSON file between two marker lines; its tables are made here
from the files, never typed in:

    python -m bertlab.train.benchtable benchmarks/README.md     # rewrite them from the JSON
    python -m bertlab.train.benchtable benchmarks/README.md --check   # exit 1 if one is stale

(the test suite runs the check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from bertlab.results import write_atomic

LOOPS = {"naive": "naive", "trainer": "HF Trainer", "padded": "fit, padded", "packed": "fit, packed",
         "packed+compile": "fit, packed+compile", "packed+cudagraphs": "fit, packed+CUDA graphs"}
FIT_LOOPS = {"padded": dict(bucketing=True), "packed": dict(packing=True, bucketing=False),
             "packed+compile": dict(packing=True, bucketing=False, compile=True),
             # one static graph per run (bertlab.layout), replayed as a CUDA graph: CUDA only
             "packed+cudagraphs": dict(packing=True, bucketing=False, compile=True, compile_mode="reduce-overhead")}
CUDA_ONLY = {"packed+cudagraphs": "CUDA graphs need a CUDA device"}
# the comparisons notebook 11 and the README read: each `fit` loop against the two baselines,
# packing against padding, and compiling against not compiling
PAIRS = [(ours, other) for ours in FIT_LOOPS for other in ("naive", "trainer")] + [
    ("packed", "padded"), ("packed+compile", "packed"), ("packed+cudagraphs", "packed+compile")]


def median_row(size: str, workload: str, loop: str, runs: list[dict[str, Any]], peak: float | None) -> dict[str, Any]:
    """The row of one loop: the figures of its run with the median samples/s (of an even
    count, the faster middle one), and every run's samples/s."""
    m = sorted(runs, key=lambda r: r["train_samples_per_s"])[len(runs) // 2]
    # one peak for every loop: MFU is the fraction of what this hardware can do
    mfu = m["tflops_per_s"] * 1e12 / peak if peak else None
    return {"size": size, "workload": workload, "loop": loop,
            "samples_per_s": m["train_samples_per_s"], "tokens_per_s": m["tokens_per_s"],
            "mfu": mfu, "peak_memory_gb": m["peak_memory_gb"], "first_step_s": m.get("first_step_s"),
            "samples_per_s_runs": [r["train_samples_per_s"] for r in runs]}


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'size':<9} {'workload':<8} {'loop':<24} {'samples/s':>10} {'tokens/s':>10} {'MFU':>8} "
          f"{'peak GB':>8} {'1st step s':>10}")
    for r in rows:
        mfu = f"{100 * r['mfu']:.2f}%" if r["mfu"] is not None else "n/a"
        first = f"{r['first_step_s']:.1f}" if r.get("first_step_s") is not None else "-"
        print(f"{r['size']:<9} {r['workload']:<8} {LOOPS[r['loop']]:<24} {r['samples_per_s']:>10.1f} "
              f"{r['tokens_per_s']:>10.0f} {mfu:>8} {r['peak_memory_gb']:>8.2f} {first:>10}")


def ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """samples/s of one loop over another's (`PAIRS`), per size and workload: keys like
    "minilm short packed/trainer" or "minilm longtail packed/padded"."""
    by = {(r["size"], r["workload"], r["loop"]): r["samples_per_s"] for r in rows}
    out = {}
    for size, workload in dict.fromkeys((r["size"], r["workload"]) for r in rows):
        for ours, other in PAIRS:
            if by.get((size, workload, ours)) and by.get((size, workload, other)):
                out[f"{size} {workload} {ours}/{other}"] = by[(size, workload, ours)] / by[(size, workload, other)]
    return out


def markdown_table(record: dict[str, Any]) -> str:
    """One benchmark file as a Markdown table: per size, workload and loop, the median
    samples/s with the spread of its runs, the ratios to the Trainer and to padding, MFU."""
    ratio = ratios(record["results"])
    lines = ["| size | workload | loop | samples/s (median) | runs | / Trainer | / padded | MFU | 1st step s |",
             "|---|---|---|---:|---|---:|---:|---:|---:|"]
    for r in record["results"]:
        key = f"{r['size']} {r['workload']} {r['loop']}"
        runs = ", ".join(f"{x:.1f}" for x in r.get("samples_per_s_runs", [r["samples_per_s"]]))
        cell = lambda name: f"{ratio[name]:.2f}x" if name in ratio else "-"  # noqa: E731
        mfu = f"{100 * r['mfu']:.2f}%" if r.get("mfu") is not None else "n/a"
        first = f"{r['first_step_s']:.1f}" if r.get("first_step_s") is not None else "-"
        lines.append(f"| {r['size']} | {r['workload']} | {LOOPS.get(r['loop'], r['loop'])} | {r['samples_per_s']:.1f} "
                     f"| {runs} | {cell(key + '/trainer')} | {cell(key + '/padded')} | {mfu} | {first} |")
    m = record["machine"]
    where = m.get("gpu") or f"{m.get('cpu', '?')}, {m.get('threads', '?')} threads"
    load = f"load {m.get('load_average_at_start', '?')} at the start, {m.get('load_average_at_end', '?')} at the end"
    lines.append(f"\n{where}; {record['date']}; {record.get('repeats', 1)} run(s) of each loop; {load}; "
                 f"`{record['command']}`")
    return "\n".join(lines)


MARKER = re.compile(r"(<!-- table: (\S+\.json) -->\n)(.*?)(<!-- end table -->)", re.S)


def refresh(readme: str | Path) -> tuple[str, str]:
    """(old text, new text) of `readme` with every marked table made again from its JSON file
    (the path in the marker, relative to the README's folder)."""
    readme = Path(readme)
    old = readme.read_text(encoding="utf-8")
    table = lambda m: m[1] + markdown_table(json.loads((readme.parent / m[2]).read_text())) + "\n" + m[4]  # noqa: E731
    return old, MARKER.sub(table, old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertlab.train.benchtable", description=__doc__.split("\n\n")[0])
    parser.add_argument("readme", help="a Markdown file with <!-- table: FILE.json --> ... <!-- end table --> markers")
    parser.add_argument("--check", action="store_true", help="only say whether its tables are current (exit 1 if not)")
    args = parser.parse_args(argv)
    old, new = refresh(args.readme)
    if args.check:
        if old != new:
            print(f"{args.readme}: a table differs from its JSON file; run python -m bertlab.train.benchtable {args.readme}")
        return int(old != new)
    if old != new:
        write_atomic(args.readme, new)
    print(f"{args.readme}: {len(MARKER.findall(new))} table(s) {'rewritten' if old != new else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
