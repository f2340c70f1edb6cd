"""``python -m bertlab finetune --model ... --dataset ... [options]``: `fit` as a script.

Derived in notebook 11. Every `TrainConfig` field is a flag of the same name
(``--max-length`` or ``--max_length``; ``--bucketing`` / ``--no-bucketing`` for yes/no
settings). Under ``torchrun`` it trains on every process with DistributedDataParallel:

    torchrun --nproc_per_node 8 -m bertlab finetune --model bert-base-uncased --dataset hf:glue/sst2

The process group is set up from torchrun's environment variables (RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT; NCCL on GPUs, gloo on CPUs); only rank 0 writes checkpoints and
metrics. A bad --output-dir or --metrics-path is refused before any loading or training
(an existing --metrics-path file that is not an earlier metrics JSON only with --overwrite,
a notebook never); Ctrl-C saves a checkpoint, prints the command that resumes it and exits
with 130.
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import MISSING, fields

import torch

from bertlab import env, interrupts, results
from bertlab.errors import BertlabError
from bertlab.train import checkpoint
from bertlab.train.config import HELP, IMPLEMENTATIONS, PRECISIONS, TrainConfig
from bertlab.train.loop import fit
from bertlab.train.setup import distributed, local_device, setup

HEADLINE = ("test_accuracy", "validation_accuracy", "challenge_accuracy", "best_validation_accuracy",
            "train_samples_per_s", "tokens_per_s", "mfu", "peak_memory_gb")
# flags with a fixed list of values: argparse lists them in --help and rejects others
CHOICES = {"precision": PRECISIONS, "device": env.DEVICES, "implementation": IMPLEMENTATIONS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else None
        flags = [f"--{f.name.replace('_', '-')}"] + ([f"--{f.name}"] if "_" in f.name else [])
        if isinstance(default, bool):
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default, help=HELP[f.name])
        else:
            choices = CHOICES.get(f.name)
            parser.add_argument(*flags, type=type(default), default=default, choices=choices,
                                help=f"{HELP[f.name]} (default: {default!r})")
    parser.add_argument("--metrics-path", "--metrics_path", default="", help="write the headline metrics as JSON here")


def _start_process_group(cfg: TrainConfig) -> bool:
    """Join torchrun's process group when there is one to join; True if this call started it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.distributed.is_initialized():
        return False
    device = local_device(env.pick_device(cfg.device))  # the same device `fit` will pick
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL talks to the current GPU: this process's own
    torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def resume_command(cfg: TrainConfig, metrics_path: str) -> str:
    """The command that continues `cfg`'s run: every setting that is not the default, and --resume."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    words = (["torchrun", "--nproc_per_node", str(world_size), "-m"] if world_size > 1 else ["python", "-m"])
    words += ["bertlab", "finetune"]
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        if f.name in ("resume", "overwrite") or value == getattr(defaults, f.name):
            continue
        flag = f"--{f.name.replace('_', '-')}"
        words += [flag if value else f"--no-{flag[2:]}"] if isinstance(value, bool) else [flag, str(value)]
    words += (["--metrics-path", metrics_path] if metrics_path else []) + ["--resume"]
    return shlex.join(words)


def check_paths(cfg: TrainConfig, metrics_path: str) -> None:
    """Refuse a bad --output-dir or --metrics-path in one sentence, before anything is loaded."""
    if cfg.output_dir:
        checkpoint.check_output_dir(cfg.output_dir, cfg.resume, cfg.overwrite)
    if metrics_path:  # an earlier metrics JSON ("_meta") is replaced; any other file only with --overwrite
        results.check_output(metrics_path, f"--metrics-path {metrics_path}", results.has_keys("_meta"), cfg.overwrite)


def main(args: argparse.Namespace) -> int:
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)}).validate()
    check_paths(cfg, args.metrics_path)
    started = _start_process_group(cfg)
    rank, world_size = distributed()
    try:
        result = fit(*setup(cfg), cfg, progress=rank == 0)
    except checkpoint.Interrupted as stop:
        if rank == 0:
            resume = resume_command(cfg, args.metrics_path)
            if stop.final and stop.folder:  # training had finished: the run is saved, only its scores are missing
                print(f"interrupted during the final evaluation, after the last step ({stop.step} of {stop.total}); "
                      f"the trained run is in {stop.folder}; to evaluate it without training again: {resume}")
            else:
                where = (f"checkpoint saved in {stop.folder}; resume with: {resume}"
                         if stop.folder else "nothing saved (no --output-dir, so nothing to resume)")
                print(f"interrupted at step {stop.step} of {stop.total}; {where}")
        return 128 + int(interrupts.stopped_by)  # 130 for Ctrl-C, 143 for SIGTERM, as shells expect
    except KeyboardInterrupt:
        if rank == 0:
            print("interrupted before training started; nothing to resume")
        return 128 + int(interrupts.stopped_by)
    except BertlabError:
        if rank > 0:  # under torchrun every process meets the same error: rank 0 says it, once
            return 2
        raise
    finally:
        if started:
            torch.distributed.destroy_process_group()
    if rank == 0:
        # a script has no notebook profile of its own: record the one this machine resolves to
        results.start("finetune", profile=env.resolve_profile("auto"), seed=cfg.seed,
                      metrics_path=args.metrics_path, source="cli", device=result.metrics["device"],
                      versions=env.versions(), config=cfg.to_dict(), world_size=world_size)
        for name in HEADLINE:
            if result.metrics.get(name) is not None:
                results.record(name, result.metrics[name])
        for name, value in result.metrics.items():
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"{name}: {shown}")
    return 0
