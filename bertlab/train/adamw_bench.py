"""Fused, foreach and plain (one tensor at a time) AdamW: the optimizer step alone, timed.

Measured for `bertlab.train.optimizer`, which picks the fused kernel on CPU and CUDA. The
training loops time whole steps, where the optimizer is a small, noisy share; here the
three implementations update the same model's parameters (random gradients), interleaved,
``--repeats`` times, and the medians and ratios are printed:

    python -m bertlab.train.adamw_bench --model minilm --steps 20 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from bertlab import hub
from bertlab.train.optimizer import param_groups
from bertlab.train.throughput import cpu_name

KINDS = {"plain": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}


def time_steps(model: torch.nn.Module, steps: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per optimizer step of each of `KINDS`, `repeats` runs of `steps` steps each
    (after 3 untimed ones), the kinds interleaved so that a slow moment hits them alike."""
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimizers = {k: torch.optim.AdamW(param_groups(model, 0.01), lr=1e-5, **v) for k, v in KINDS.items()}
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    for _ in range(repeats):
        for kind, optimizer in optimizers.items():
            for _ in range(3):
                optimizer.step()
            start = time.perf_counter()
            for _ in range(steps):
                optimizer.step()
            times[kind].append((time.perf_counter() - start) / steps)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertlab.train.adamw_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm", help="a model name or folder (bertlab.hub.load_classifier)")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; the median is reported")
    args = parser.parse_args(argv)
    model = hub.load_classifier(args.model, num_labels=2)
    count = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {count / 1e6:.1f}M parameters, {torch.get_num_threads()} threads, {cpu_name()}")
    times = time_steps(model, args.steps, args.repeats)
    median = {k: statistics.median(v) for k, v in times.items()}
    for kind, runs in times.items():
        print(f"{kind:<8} {1000 * median[kind]:7.1f} ms per step (runs: {', '.join(f'{1000 * t:.1f}' for t in runs)})")
    print(f"fused is {median['plain'] / median['fused']:.2f}x plain and {median['foreach'] / median['fused']:.2f}x foreach")
    return 0


if __name__ == "__main__":
    sys.exit(main())
