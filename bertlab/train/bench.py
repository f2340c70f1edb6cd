"""``python -m bertlab bench``: time five fine-tuning loops on the same data and model.

Measured in notebook 11. In one process, on the same examples and the same weights:
`naive`, the tutorial loop (`bertlab.train.naive`: fp32, every batch padded to max_length,
plain AdamW); `trainer`, the Hugging Face `Trainer` with the settings a careful user picks
(bf16 where native, ``train_sampling_strategy="group_by_length"`` - transformers 5's name
for the old ``group_by_length=True`` - fused AdamW); and `bertlab.train.fit` three ways, on
the course's own BERT: `padded` (dynamic padding, length bucketing), `packed` (padding-free
rows, `bertlab.train.packing`) and `packed+compile` (the same under torch.compile; its
first, compiling step is reported apart as `first_step_s`), and on CUDA a sixth,
`packed+cudagraphs` (``compile_mode="reduce-overhead"``: the packed step is one static graph,
`bertlab.layout`, replayed as a CUDA graph; skipped elsewhere, with the reason recorded
under "skipped"). The loops, rows, ratios and README tables are in
`bertlab.train.benchtable`. Three workloads: `full`
(every sequence max_length tokens: the headline MFU, comparable across machines), `short`
(the real sentences of the reviews data) and `longtail` (reviews sentences joined into a
long-tailed mix of lengths up to max_length, shaped like real sentence-classification
data), so that nothing is tuned to the bundled set alone. Sizes: the bundled `minilm`
and `bert-base` (its shape, random weights: speed does not depend on the values). The
first step of each loop is left out of the timing. With ``--repeats N`` every loop runs N
times, the repeats interleaved (all loops once, then all again) so that a slow minute on a
shared machine falls on every loop alike; each row is the run with the median samples/s and
keeps every run's figure. Results go to a JSON file (machine, date, command, figures) that
notebook 11 shows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bertlab import env, hub, params
from bertlab.data import Example, TextDataset, load_text_dataset
from bertlab.results import check_output, has_keys, write_json_atomic
from bertlab.train import throughput
from bertlab.train.benchtable import CUDA_ONLY, FIT_LOOPS, LOOPS, median_row, print_table, ratios
from bertlab.train.config import ATTENTION, PRECISIONS, TrainConfig
from bertlab.train.loop import fit
from bertlab.train.naive import naive_fit
from bertlab.train.optimizer import make_optimizer
from bertlab.train.precision import allow_tf32, resolve_precision
from bertlab.train.setup import build_model
from bertlab.train.step import make_schedule

# transformers takes seconds to import: only the Trainer loop and `save_random_model` need
# it, so it is imported inside those functions, not here.

SIZES = {
    # a tiny random BERT for tests
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "minilm": None,  # the bundled all-MiniLM-L6-v2, pretrained weights
    # bert-base's shape with random weights: speed does not depend on the values
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
# the committed results of this checkout (benchmarks/*.json), which notebook 11 reads
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
WORKLOADS = ("full", "short", "longtail")
LOAD_WARNING = 1.5  # a 1-minute load above this on 2 cores: other programs share the machine


def save_random_model(folder: str | os.PathLike, size: str = "tiny", num_labels: int = 2, **config: Any) -> str:
    """Write a randomly initialised BERT classifier of `size` (+ the bundled tokenizer) to `folder`.

    Extra keyword arguments override `transformers.BertConfig` fields (e.g. hidden_dropout_prob).
    """
    from transformers import BertConfig, BertForSequenceClassification  # heavy: see the imports

    tokenizer = hub.load_tokenizer("minilm")
    config = BertConfig(vocab_size=tokenizer.vocab_size, num_labels=num_labels, **{**SIZES[size], **config})
    torch.manual_seed(0)
    with hub.quiet():  # no "Writing model shards" bar
        BertForSequenceClassification(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)


def joined_examples(examples: list[Any], tokenizer: Any, targets: list[int]) -> list[Any]:
    """One example per target token count: consecutive sentences joined (at least one) until
    [CLS] + their tokens + [SEP] reach the target; each takes its first sentence's label."""
    out, i = [], 0
    for target in targets:
        texts, n_tokens, label = [], 2, examples[i % len(examples)].label
        while not texts or n_tokens < target:
            text = examples[i % len(examples)].text
            texts.append(text)
            n_tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
            i += 1
        out.append(Example(" ".join(texts), label))
    return out


def full_length_examples(examples: list[Any], tokenizer: Any, max_length: int, count: int) -> list[Any]:
    """`count` examples of at least `max_length` tokens (exactly max_length once truncated)."""
    return joined_examples(examples, tokenizer, [max_length] * count)


def longtail_examples(examples: list[Any], tokenizer: Any, max_length: int, count: int, seed: int = 0) -> list[Any]:
    """`count` examples whose token lengths follow a long tail: log-normal targets (median 40
    tokens, a few up to max_length)."""
    rng = random.Random(seed)
    targets = [min(max_length, int(rng.lognormvariate(math.log(40), 0.8))) for _ in range(count)]
    return joined_examples(examples, tokenizer, targets)


def workload_data(name: str, source: Any, tokenizer: Any, max_length: int, count: int) -> Any:
    """A training-only TextDataset for one of `WORKLOADS`."""
    if name == "short":
        train = source.train[:count]
    elif name == "longtail":
        train = longtail_examples(source.train, tokenizer, max_length, count)
    else:
        train = full_length_examples(source.train, tokenizer, max_length, count)
    return TextDataset(name, train, [], [], source.label_names)


def run_trainer(
    model_name: str, data: Any, cfg: TrainConfig, device: torch.device, precision: str, steps: int
) -> dict[str, Any]:
    """Time the Hugging Face Trainer for `steps` steps after one untimed step."""
    # heavy: see the imports
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    env.seed_everything(cfg.seed)
    tokenizer = hub.load_tokenizer(model_name)
    model = hub.load_classifier(model_name, num_labels=len(data.label_names), attn_implementation="sdpa").train()
    # a list of tokenized rows is a dataset to the Trainer (and its length grouping reads
    # input_ids): no `datasets` needed, which the GPU machine lacks
    enc = tokenizer([ex.text for ex in data.train], truncation=True, max_length=cfg.max_length)
    rows = [{**{k: enc[k][i] for k in enc}, "label": ex.label} for i, ex in enumerate(data.train)]
    lengths: list[list[int]] = []
    pad = DataCollatorWithPadding(tokenizer)

    def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = pad(features)
        lengths.append(batch["attention_mask"].sum(1).tolist())
        return batch

    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            throughput.synchronize(device)
            ends.append(time.perf_counter())

    # the same AdamW groups and schedule as the other loops: they differ in speed, not in rules
    optimizer = make_optimizer(model.to(device), cfg.lr, cfg.weight_decay, device)
    scheduler = make_schedule(optimizer, cfg.warmup_ratio, steps + 1)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=cfg.batch_size, max_steps=steps + 1,
            bf16=precision == "bf16", fp16=precision == "fp16", train_sampling_strategy="group_by_length",
            logging_strategy="no", save_strategy="no", report_to="none",
            disable_tqdm=True, use_cpu=device.type == "cpu", seed=cfg.seed, dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate,
                          callbacks=[Clock()], optimizers=(optimizer, scheduler))
        throughput.reset_peak_memory(device)
        with contextlib.redirect_stdout(io.StringIO()):  # the Trainer prints its own summary
            trainer.train()
    meter = throughput.Meter(model, device, precision)
    meter.seconds = ends[-1] - ends[0]  # steps 2..N: from the end of step 1 to the end of the last
    for batch_lengths in lengths[1 : steps + 1]:
        meter.add(batch_lengths)
    return meter.summary()


def run_one(
    loop: str, model_name: str, data: Any, cfg: TrainConfig, device: torch.device, steps: int
) -> dict[str, Any]:
    """Time one of `LOOPS`; returns its throughput figures.

    `device` is the one `cfg.device` resolves to (`fit` and `naive_fit` resolve it themselves).
    """
    throughput.reset_peak_memory(device)
    run_cfg = TrainConfig(**{**cfg.to_dict(), "max_steps": steps + 1, "num_epochs": 1000, **FIT_LOOPS.get(loop, {})})
    if loop == "trainer":
        return run_trainer(model_name, data, cfg, device, resolve_precision(cfg.precision, device), steps)
    model, tokenizer = build_model(run_cfg, len(data.label_names)), hub.load_tokenizer(model_name)
    train = naive_fit if loop == "naive" else fit
    return train(model, tokenizer, data, run_cfg, progress=False).metrics


def load_average(when: str, own: int = 0) -> dict[str, float]:
    """{"load_average_at_<when>": 1-minute load} where the system reports one (not on Windows);
    prints a warning when it is above `LOAD_WARNING` plus `own`, the threads the benchmark itself
    kept busy (at its end the 1-minute average still holds them): the figures are then not an
    idle machine's."""
    if not hasattr(os, "getloadavg"):
        return {}
    load = round(os.getloadavg()[0], 2)
    if load > LOAD_WARNING + own:
        limit = f"{LOAD_WARNING} plus the benchmark's own {own} threads" if own else f"{LOAD_WARNING}"
        print(f"WARNING: the load average at the {when} is {load} (above {limit}): other programs are running, so "
              "these figures are lower than this machine's; rerun with nothing else running.")
    return {f"load_average_at_{when}": load}


def machine(device: torch.device) -> dict[str, Any]:
    """Where the figures were measured (`device`: the one the loops train on)."""
    info = {"cpu": throughput.cpu_name(), "threads": torch.get_num_threads(), "device": device.type,
            "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    info.update(load_average("start"))
    return info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", "--size", dest="sizes", default="minilm",
                        help="comma-separated: minilm (the bundled model), bert-base (its shape, random weights), tiny")
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps per loop (after one untimed)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run every loop this many times (interleaved) and report the median run")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=32)
    parser.add_argument("--max-length", "--max_length", dest="max_length", type=int, default=128)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--attn-implementation", "--attn_implementation", dest="attn_implementation",
                        choices=ATTENTION, default="sdpa",
                        help="attention of the course's BERT in the naive and fit loops (varlen: packed batches on CUDA)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="full, short and/or longtail")
    parser.add_argument("--loops", default=",".join(LOOPS), help=f"which of {', '.join(LOOPS)} to time")
    parser.add_argument("--device", choices=env.DEVICES, default="auto")
    parser.add_argument("--out", default="", help="write the results as JSON here (e.g. benchmarks/cpu-NAME.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace an --out file that no benchmark wrote")


def choices(name: str, text: str, known: Any) -> list[str]:
    """The comma-separated values of `text`, each checked against `known` (one sentence if not)."""
    values = [x.strip() for x in text.split(",") if x.strip()]
    if not values:
        raise params.ParameterError(f"--{name} is empty; give one or more of {', '.join(known)}.")
    for value in values:
        params.choice(name, value, tuple(known))
    return values


def main(args: argparse.Namespace) -> int:
    if not isinstance(args.steps, int) or args.steps < 1:  # 0 timed steps would time nothing and print ratios of it
        raise params.ParameterError(f"bench --steps must be at least 1, not {args.steps}: it counts the timed steps "
                                    "of each loop; give --steps 5 (the default) or more.")
    if not isinstance(args.repeats, int) or args.repeats < 1:
        raise params.ParameterError(f"bench --repeats must be at least 1, not {args.repeats}: it counts the runs of "
                                    "each loop, whose median is reported; give --repeats 3 for a median of three.")
    if args.out:  # an earlier benchmark's JSON (machine, results) is replaced; anything else only when asked
        check_output(args.out, f"--out {args.out}", has_keys("machine", "results"), args.overwrite, "bench.json")
    device = env.pick_device(args.device)  # the run's one device; passed down from here
    where = machine(device)
    sizes, loops = choices("sizes", args.sizes, SIZES), choices("loops", args.loops, LOOPS)
    workloads = choices("workloads", args.workloads, WORKLOADS)
    skipped = {loop: f"{why}; this run is on {device.type}" for loop, why in CUDA_ONLY.items()
               if loop in loops and device.type != "cuda"}
    for loop, why in skipped.items():
        print(f"skipping {LOOPS[loop]}: {why}")
    loops = [loop for loop in loops if loop not in skipped]
    precision = resolve_precision(args.precision, device)
    if precision == "fp32":
        allow_tf32(device)  # as `fit` does, before the peak is read: every loop runs (and is divided by) TF32
    peak, peak_label = throughput.peak_flops(device, precision)
    print(f"sizes: {', '.join(sizes)}, device: {device.type}, precision of trainer and fit: {precision}, "
          f"batch {args.batch_size}, {args.steps} timed steps per loop, {args.repeats} run(s) of each loop")
    print(f"FLOPs: {throughput.FORMULA}")
    print(f"peak:  {peak_label}; MFU = model FLOPs per second / this peak, for every loop")
    source = load_text_dataset("reviews")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            model_name = "minilm" if size == "minilm" else save_random_model(Path(tmp) / size, size)
            cfg = TrainConfig(model=model_name, max_length=args.max_length, batch_size=args.batch_size,
                              precision=args.precision, device=args.device,
                              attn_implementation=args.attn_implementation).validate()
            tokenizer = hub.load_tokenizer(model_name)
            for workload in workloads:
                data = workload_data(workload, source, tokenizer, args.max_length, args.batch_size * (args.steps + 1))
                runs: dict[str, list[dict[str, Any]]] = {loop: [] for loop in loops}
                for repeat in range(args.repeats):  # interleaved: a noisy minute hits every loop alike
                    for loop in loops:
                        of = f" (run {repeat + 1} of {args.repeats})" if args.repeats > 1 else ""
                        print(f"timing {size} {workload} {LOOPS[loop]}{of} ...", flush=True)
                        runs[loop].append(run_one(loop, model_name, data, cfg, device, args.steps))
                for loop in loops:
                    rows.append(median_row(size, workload, loop, runs[loop], peak))
    print()
    print_table(rows)
    found = ratios(rows)
    for name, value in found.items():
        print(f"{name} = {value:.2f}x")
    if args.out:
        record = {
            "machine": {**where, **load_average("end", own=torch.get_num_threads() if device.type == "cpu" else 0)},
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m bertlab bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]),
            "sizes": sizes, "batch_size": args.batch_size, "max_length": args.max_length,
            "steps": args.steps, "repeats": args.repeats, "precision": precision,
            "attn_implementation": args.attn_implementation, "loops": LOOPS,
            "flops_formula": throughput.FORMULA, "peak": peak_label, "peak_flops": peak,
            "results": rows, "ratios": found, "skipped": skipped,
        }
        write_json_atomic(args.out, record)
        print(f"wrote {args.out}")
    return 0
