"""``python -m bertlab bench``: time three fine-tuning loops on the same data and model.

Measured in notebook 11. In one run, on the same examples and the same weights:
(a) the naive tutorial loop (`bertlab.train.naive`: fp32, every batch padded to max_length,
plain AdamW); (b) the Hugging Face `Trainer` with the settings a careful user picks (bf16
where available, ``train_sampling_strategy="group_by_length"`` - transformers 5's name for
the old ``group_by_length=True`` - fused AdamW, and torch.compile when ours uses it); (c)
`bertlab.train.fit`. Two workloads: full `max_length`-token sequences (the headline MFU,
comparable across machines) and the real short sentences of the reviews data (what
bucketing and dynamic padding buy). The first step of each loop is left out of the timing.
Results go to a JSON file (machine, date, command, figures) that notebook 11 shows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bertlab import env, hub, params
from bertlab.data import Example, TextDataset, load_text_dataset
from bertlab.results import write_json_atomic
from bertlab.train import throughput
from bertlab.train.config import PRECISIONS, TrainConfig
from bertlab.train.loop import fit
from bertlab.train.naive import naive_fit
from bertlab.train.precision import resolve_precision

# transformers and datasets take seconds to import: only (b) and `save_random_model` need
# them, so they are imported inside those functions, not here.

SIZES = {
    # a tiny random BERT for tests
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "minilm": None,  # the bundled all-MiniLM-L6-v2, pretrained weights
    # bert-base's shape with random weights: speed does not depend on the values
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
LOOPS = {"naive": "(a) naive", "trainer": "(b) HF Trainer", "bertlab": "(c) bertlab"}


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


def full_length_examples(examples: list[Any], tokenizer: Any, max_length: int, count: int) -> list[Any]:
    """`count` examples of exactly `max_length` tokens, made by joining consecutive sentences."""
    out, i = [], 0
    while len(out) < count:
        texts, n_tokens, label = [], 2, examples[i % len(examples)].label
        while n_tokens < max_length:
            text = examples[i % len(examples)].text
            texts.append(text)
            n_tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
            i += 1
        out.append(Example(" ".join(texts), label))
    return out


def workload_data(name: str, source: Any, tokenizer: Any, max_length: int, count: int) -> Any:
    """A training-only TextDataset: real sentences ("short") or full-length sequences ("full")."""
    train = source.train[:count] if name == "short" else full_length_examples(source.train, tokenizer, max_length, count)
    return TextDataset(name, train, [], [], source.label_names)


def run_trainer(
    model_name: str, data: Any, cfg: TrainConfig, device: torch.device, precision: str, steps: int
) -> dict[str, Any]:
    """Time the Hugging Face Trainer for `steps` steps after one untimed step."""
    import datasets  # heavy: see the imports
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    env.seed_everything(cfg.seed)
    tokenizer = hub.load_tokenizer(model_name)
    model = hub.load_classifier(model_name, num_labels=len(data.label_names), attn_implementation="sdpa").train()
    datasets.disable_progress_bars()
    rows = Dataset.from_list([{"text": ex.text, "label": ex.label} for ex in data.train])
    rows = rows.map(lambda b: tokenizer(b["text"], truncation=True, max_length=cfg.max_length),
                    batched=True, remove_columns=["text"])
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

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=cfg.batch_size, max_steps=steps + 1,
            learning_rate=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_ratio,
            bf16=precision == "bf16", fp16=precision == "fp16",
            train_sampling_strategy="group_by_length", optim="adamw_torch_fused",
            torch_compile=cfg.compile, logging_strategy="no", save_strategy="no", report_to="none",
            disable_tqdm=True, use_cpu=device.type == "cpu", seed=cfg.seed, dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate,
                          callbacks=[Clock()])
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
    """Time one loop: (a) naive, (b) trainer or (c) bertlab; returns throughput figures.

    `device` is the one `cfg.device` resolves to (`fit` and `naive_fit` resolve it themselves).
    """
    throughput.reset_peak_memory(device)
    run_cfg = TrainConfig(**{**cfg.to_dict(), "max_steps": steps + 1, "num_epochs": 1000})
    if loop == "naive":
        return naive_fit(run_cfg, data=data, progress=False).metrics
    if loop == "trainer":
        return run_trainer(model_name, data, cfg, device, resolve_precision(cfg.precision, device), steps)
    return fit(run_cfg, data=data, progress=False).metrics


def load_average(when: str) -> dict[str, float]:
    """{"load_average_at_<when>": 1-minute load} where the system reports one (not on Windows)."""
    return {f"load_average_at_{when}": round(os.getloadavg()[0], 2)} if hasattr(os, "getloadavg") else {}


def machine(device: torch.device) -> dict[str, Any]:
    """Where the figures were measured (`device`: the one the loops train on)."""
    info = {"cpu": throughput.cpu_name(), "threads": torch.get_num_threads(), "device": device.type,
            "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    info.update(load_average("start"))
    return info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=tuple(SIZES), default="minilm",
                        help="minilm: the bundled model; bert-base: its shape with random weights")
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps per loop (after one untimed)")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=32)
    parser.add_argument("--max-length", "--max_length", dest="max_length", type=int, default=128)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile in (b) and (c)")
    parser.add_argument("--workloads", default="full,short", help="full (max_length tokens) and/or short (real sentences)")
    parser.add_argument("--loops", default=",".join(LOOPS), help="which of naive, trainer, bertlab to time")
    parser.add_argument("--device", choices=env.DEVICES, default="auto")
    parser.add_argument("--out", default="", help="write the results as JSON here (e.g. benchmarks/cpu-NAME.json)")


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'workload':<8} {'loop':<16} {'samples/s':>10} {'tokens/s':>10} {'MFU':>8} {'peak GB':>8}")
    for r in rows:
        mfu = f"{100 * r['mfu']:.2f}%" if r["mfu"] is not None else "n/a"
        print(f"{r['workload']:<8} {LOOPS[r['loop']]:<16} {r['samples_per_s']:>10.1f} {r['tokens_per_s']:>10.0f} "
              f"{mfu:>8} {r['peak_memory_gb']:>8.2f}")


def ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """samples/s of (c) bertlab over (a) naive and over (b) the Trainer, per workload."""
    by = {(r["workload"], r["loop"]): r["samples_per_s"] for r in rows}
    out = {}
    for workload in dict.fromkeys(r["workload"] for r in rows):
        ours = by.get((workload, "bertlab"))
        for other, tag in (("naive", "c/a"), ("trainer", "c/b")):
            if ours and by.get((workload, other)):
                out[f"{workload} {tag}"] = ours / by[(workload, other)]
    return out


def main(args: argparse.Namespace) -> int:
    device = env.pick_device(args.device)  # the run's one device; passed down from here
    where = machine(device)
    loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    workloads = [x.strip() for x in args.workloads.split(",") if x.strip()]
    for name, given, known in (("loops", loops, LOOPS), ("workloads", workloads, ("full", "short"))):
        for value in given:
            params.choice(name, value, tuple(known))
    with tempfile.TemporaryDirectory() as tmp:
        model_name = "minilm" if args.size == "minilm" else save_random_model(Path(tmp) / args.size, args.size)
        cfg = TrainConfig(model=model_name, max_length=args.max_length, batch_size=args.batch_size,
                          precision=args.precision, compile=args.compile, device=args.device).validate()
        precision = resolve_precision(args.precision, device)
        tokenizer = hub.load_tokenizer(model_name)
        source = load_text_dataset("reviews")
        peak, peak_label = throughput.peak_flops(device, precision)
        print(f"model: {args.size}, device: {device.type}, precision of (b) and (c): {precision}, "
              f"batch {args.batch_size}, {args.steps} timed steps per loop")
        print(f"FLOPs: {throughput.FORMULA}")
        print(f"peak:  {peak_label}; MFU = model FLOPs per second / this peak, for all three loops")
        rows = []
        for workload in workloads:
            data = workload_data(workload, source, tokenizer, args.max_length, args.batch_size * (args.steps + 1))
            for loop in loops:
                print(f"timing {workload} {LOOPS[loop]} ...", flush=True)
                m = run_one(loop, model_name, data, cfg, device, args.steps)
                # one peak for every loop: MFU is the fraction of what this hardware can do
                mfu = m["tflops_per_s"] * 1e12 / peak if peak else None
                rows.append({"workload": workload, "loop": loop, "samples_per_s": m["train_samples_per_s"],
                             "tokens_per_s": m["tokens_per_s"], "mfu": mfu,
                             "peak_memory_gb": m["peak_memory_gb"]})
    print()
    print_table(rows)
    found = ratios(rows)
    for name, value in found.items():
        print(f"{name} = {value:.2f}x")
    if args.out:
        record = {
            "machine": {**where, **load_average("end")},
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m bertlab bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]),
            "size": args.size, "batch_size": args.batch_size, "max_length": args.max_length,
            "steps": args.steps, "precision": precision, "compile": args.compile,
            "flops_formula": throughput.FORMULA, "peak": peak_label, "peak_flops": peak,
            "results": rows, "ratios": found,
        }
        write_json_atomic(args.out, record)
        print(f"wrote {args.out}")
    return 0
