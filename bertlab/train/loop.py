"""The fast fine-tuning loop: `fit` trains, `evaluate` scores.

Derived in notebook 11, piece by piece: bf16 autocast (fp16 with a gradient scaler where
bf16 is missing), dynamic padding with length bucketing, SDPA attention, AdamW without
weight decay on biases and LayerNorm (fused where available), linear warmup then linear
decay, gradient accumulation, clipping, optional `torch.compile`, evaluation every N steps
keeping the best weights, and atomic checkpoints that resume to the same result. It runs
under `torchrun` too (DistributedDataParallel; only rank 0 writes).

A few hooks (`Hooks`) let a notebook or a test look in without an event framework.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tqdm.auto import tqdm

from bertlab import env, hub
from bertlab.data import Collator, load_text_dataset
from bertlab.train import checkpoint
from bertlab.train.batching import BucketBatchSampler, split, token_lengths
from bertlab.train.config import TrainConfig
from bertlab.train.optimizer import make_optimizer
from bertlab.train.precision import autocast, resolve_precision
from bertlab.train.throughput import Meter


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint (JSON)."""

    epoch: int = 0
    step_in_epoch: int = 0  # optimizer steps done in the current epoch
    global_step: int = 0
    micro_batch_size: int = 0
    best_score: float | None = None
    best_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Hooks:
    """Optional callbacks: before each micro-batch's forward, after each optimizer step, after each evaluation."""

    before_forward: Callable[[TrainState, dict[str, torch.Tensor]], None] | None = None
    after_step: Callable[[TrainState], None] | None = None
    after_eval: Callable[[TrainState, dict[str, float]], None] | None = None


@dataclass
class FitResult:
    model: Any  # the Hugging Face classifier (the best weights when evaluation ran)
    tokenizer: Any
    history: list[dict[str, Any]]  # one dict per optimizer step: step, epoch, lr, loss (+ eval)
    metrics: dict[str, Any]
    config: TrainConfig


def warmup_linear(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> Any:
    """lr x step/warmup during warmup, then a straight line down to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k != "labels"}


@torch.no_grad()
def evaluate(
    model: Any,
    tokenizer: Any,
    examples: list[Any],
    batch_size: int = 64,
    max_length: int = 128,
    device: torch.device | str | None = None,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Accuracy, predictions (list of N ints) and probabilities (N, C) on `examples`.

    Examples are scored in order of length (little padding) and returned in their order.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    collate = Collator(tokenizer, max_length=max_length)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text))
    probs = torch.zeros(len(examples), model.config.num_labels)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = collate([examples[i] for i in chunk])
        with autocast(device, precision):
            logits = model(**{k: v.to(device) for k, v in _model_inputs(batch).items()}).logits
        probs[chunk] = logits.float().softmax(-1).cpu()  # (B, C)
    model.train(was_training)
    predictions = probs.argmax(-1)
    labels = torch.tensor([ex.label for ex in examples], dtype=torch.long)
    accuracy = (predictions == labels).float().mean().item() if len(examples) else float("nan")
    return {"accuracy": accuracy, "predictions": predictions.tolist(), "probs": probs}


def distributed() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless a process group is running (torchrun)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def local_device(device: torch.device) -> torch.device:
    """This process's device: under torchrun, GPU number LOCAL_RANK (the one place that reads it)."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


class Trainer:
    """One run of `fit`: the objects it needs and the steps it takes."""

    def __init__(self, cfg: TrainConfig, hooks: Hooks | None, data: Any, progress: bool):
        self.cfg, self.hooks, self.progress = cfg.validate(), hooks or Hooks(), progress
        self.rank, self.world_size = distributed()
        self.device = local_device(env.pick_device(cfg.device))  # the run's one device; passed down from here
        self.precision = resolve_precision(cfg.precision, self.device)
        self.data = data if data is not None else load_text_dataset(cfg.dataset)
        self.train = self.data.train[: cfg.max_train_examples or None]
        env.seed_everything(cfg.seed)  # the new head's weights
        self.tokenizer = hub.load_tokenizer(cfg.model)
        self.model = hub.load_classifier(
            cfg.model, num_labels=len(self.data.label_names), attn_implementation="sdpa"
        ).to(self.device)
        self.model.train()
        self.collate = Collator(self.tokenizer, max_length=cfg.max_length)
        lengths = token_lengths(self.tokenizer, [ex.text for ex in self.train], cfg.max_length)
        self.sampler = BucketBatchSampler(
            lengths, cfg.batch_size * cfg.grad_accum, cfg.seed, cfg.bucketing, self.rank, self.world_size,
            pool=cfg.bucket_pool,
        )
        per_epoch = len(self.sampler)
        self.total_steps = min(cfg.max_steps or per_epoch * cfg.num_epochs, per_epoch * cfg.num_epochs)
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay, self.device)
        warmup = round(cfg.warmup_ratio * self.total_steps)
        self.scheduler = warmup_linear(self.optimizer, warmup, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.state = TrainState(micro_batch_size=cfg.batch_size)
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.out = Path(cfg.output_dir) if cfg.output_dir else None
        if cfg.resume and self.out is not None and checkpoint.find(self.out / "last"):
            saved = checkpoint.load(self.out / "last", self.model, self.optimizer, self.scheduler, self.scaler)
            self.state = TrainState(**saved["state"])
            print(f"resumed from step {self.state.global_step} (epoch {self.state.epoch})")
        self.step_model: Any = self.model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self.step_model = torch.compile(self.step_model, dynamic=True)
        self.meter = Meter(self.model, self.device, self.precision)
        self.steps_run = 0  # steps taken by this process (a resumed run starts again at 0)
        # The step last evaluated (and checkpointed): `run` evaluates at the end only if that is
        # not the last step, so the same weights are never scored twice: neither when the last
        # step is an `eval_every` step or an epoch's end, nor after resume (the checkpoint's step
        # was evaluated before it was written; a run resumed at its end would score it again).
        self.evaluated_at = self.state.global_step if cfg.resume else -1

    # -- one optimizer step -----------------------------------------------------------
    def accumulate(self, examples: list[Any]) -> tuple[torch.Tensor, list[int]]:
        """Forward and backward over the micro-batches of one step; returns (loss, real lengths)."""
        micro_batches = split(examples, self.state.micro_batch_size)
        loss_sum = torch.zeros((), device=self.device)
        lengths: list[int] = []
        for i, micro in enumerate(micro_batches):
            batch = self.collate(micro)
            lengths += batch["attention_mask"].sum(1).tolist()
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            if self.hooks.before_forward:
                self.hooks.before_forward(self.state, batch)
            last = i == len(micro_batches) - 1
            sync = self.step_model.no_sync() if self.world_size > 1 and not last else contextlib.nullcontext()
            with sync:
                with autocast(self.device, self.precision):
                    logits = self.step_model(**_model_inputs(batch)).logits  # (B, C)
                # sum / step size: the step's loss is the mean over all its examples, however split
                loss = F.cross_entropy(logits.float(), batch["labels"], reduction="sum") / len(examples)
                self.scaler.scale(loss).backward()
            loss_sum += loss.detach()
        return loss_sum, lengths

    def step(self, examples: list[Any]) -> tuple[torch.Tensor, list[int]]:
        """One optimizer step; on CUDA out-of-memory, halve the micro-batch and try again."""
        while True:
            try:
                loss, lengths = self.accumulate(examples)
                break
            except torch.OutOfMemoryError:
                if self.state.micro_batch_size == 1 or self.world_size > 1:
                    raise
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            old = self.state.micro_batch_size
            self.state.micro_batch_size = max(1, old // 2)
            accum = -(-len(examples) // self.state.micro_batch_size)
            print(
                f"out of memory with micro-batches of {old}: halving them to "
                f"{self.state.micro_batch_size} and accumulating {accum} per step instead"
            )
        if self.cfg.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, lengths

    # -- evaluation and checkpoints ------------------------------------------------------
    def _flush_losses(self) -> None:
        """Turn the pending loss tensors into numbers (one GPU sync for many steps)."""
        pending = [e for e in self.state.history if isinstance(e.get("loss"), torch.Tensor)]
        for entry in pending:
            entry["loss"] = entry["loss"].item()

    def score_split(self, examples: list[Any]) -> dict[str, Any]:
        """`evaluate` on the first `max_eval_examples` of `examples`, with the run's settings."""
        n = self.cfg.max_eval_examples or None
        return evaluate(self.model, self.tokenizer, examples[:n], 64, self.cfg.max_length, self.device, self.precision)

    def evaluate_and_save(self) -> None:
        """Score the validation split, keep the best weights, write the `last` checkpoint."""
        self.evaluated_at = self.state.global_step
        self.meter.stop()  # evaluation and checkpoints are not training time
        self._flush_losses()
        if self.data.validation:
            score = self.score_split(self.data.validation)["accuracy"]
            if self.state.history:
                self.state.history[-1]["validation_accuracy"] = score
            if self.state.best_score is None or score > self.state.best_score:
                self.state.best_score, self.state.best_step = score, self.state.global_step
                if self.out is None:
                    self.best_weights = checkpoint.model_state(self.model)
                elif self.rank == 0:
                    checkpoint.save_pretrained(self.out / "best", self.model, self.tokenizer)
            if self.hooks.after_eval:
                self.hooks.after_eval(self.state, {"validation_accuracy": score})
        if self.out is not None and self.rank == 0:
            state = {"state": self.state.__dict__, "config": self.cfg.to_dict()}
            checkpoint.save(self.out / "last", self.model, self.optimizer, self.scheduler, state, self.scaler)
        if self.steps_run:
            self.meter.start()

    def restore_best(self) -> None:
        """Load the best validation weights (from memory, or from `output_dir`/best) into the model."""
        if self.state.best_score is None:
            return
        if self.world_size > 1:
            torch.distributed.barrier()
        if self.out is not None:
            self.model.load_state_dict(load_file(str(self.out / "best" / "model.safetensors")))
        elif self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> FitResult:
        cfg, state = self.cfg, self.state
        self.bar = tqdm(total=self.total_steps, initial=state.global_step, disable=not self.progress or self.rank > 0)
        while state.epoch < cfg.num_epochs and state.global_step < self.total_steps:
            self.sampler.set_epoch(state.epoch)
            for indices in list(self.sampler)[state.step_in_epoch :]:
                if state.global_step >= self.total_steps:
                    break
                self.train_step(indices)
            if state.step_in_epoch < len(self.sampler):
                break  # stopped by max_steps in mid-epoch
            state.epoch, state.step_in_epoch = state.epoch + 1, 0
            if not cfg.eval_every:
                self.evaluate_and_save()
        self.bar.close()
        if self.evaluated_at != state.global_step:
            self.evaluate_and_save()
        self.meter.stop()
        self._flush_losses()
        self.restore_best()
        return FitResult(self.model, self.tokenizer, state.history, self.final_metrics(), cfg)

    def train_step(self, indices: list[int]) -> None:
        """Train on one step's examples, time it, log it; evaluate every `eval_every` steps."""
        state, first = self.state, self.steps_run == 0
        if first:
            self.meter.start()
        loss, lengths = self.step([self.train[i] for i in indices])
        if first:
            self.meter.stop_warmup(lengths)  # the first step pays one-time costs (allocation, compilation)
            self.meter.start()  # from here the clock runs across steps: no GPU sync per step
        else:
            self.meter.add(lengths)
        self.steps_run += 1
        state.global_step += 1
        state.step_in_epoch += 1
        lr = self.scheduler.get_last_lr()[0]
        state.history.append({"step": state.global_step, "epoch": state.epoch, "lr": lr, "loss": loss})
        self.bar.update(1)
        if self.hooks.after_step:
            self.hooks.after_step(state)
        if self.cfg.eval_every and state.global_step % self.cfg.eval_every == 0:
            self.evaluate_and_save()

    def final_metrics(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        split_name = getattr(self.data, "eval_split", "test")
        eval_examples = getattr(self.data, split_name, None) or []
        if eval_examples:
            metrics[f"{split_name}_accuracy"] = self.score_split(eval_examples)["accuracy"]
        if getattr(self.data, "challenge", None):
            metrics["challenge_accuracy"] = self.score_split(self.data.challenge)["accuracy"]
        if self.state.best_score is not None:
            metrics["best_validation_accuracy"] = self.state.best_score
            metrics["best_step"] = self.state.best_step
        metrics.update(self.meter.summary(self.world_size))
        metrics.update(steps=self.state.global_step, precision=self.precision,
                       micro_batch_size=self.state.micro_batch_size, device=self.device.type)
        return metrics


def fit(cfg: TrainConfig, hooks: Hooks | None = None, data: Any = None, progress: bool = True) -> FitResult:
    """Fine-tune `cfg.model` on `cfg.dataset` (or on `data`, a `bertlab.data.TextDataset`).

    Returns the model (with the best validation weights when evaluation ran), its
    tokenizer, the per-step history and the metrics: ``<split>_accuracy`` (test, or
    validation for data whose test split has no labels), ``challenge_accuracy`` where the
    data has one, ``train_samples_per_s``, ``tokens_per_s``, ``mfu``, ``peak_memory_gb``.
    """
    return Trainer(cfg, hooks, data, progress).run()
