"""One optimizer step: the schedule, accumulation, clipping, scaling, and the batch's way in.

Derived in notebook 11, which writes the step out by hand and checks that it gives the same
weights as `accumulate` then `update`. The rules here (and the parameter groups of
`bertlab.train.optimizer`) are the only ones in `bertlab.train`: `fit`, the naive loop and
the benchmark all take their learning rate from `make_schedule`.

- **Schedule**: linear warmup from 0, then linear decay to 0 at the last step
  (`bertlab.optim.warmup_linear`, derived in notebook 03 and tested against transformers),
  which a time budget may re-plan to end sooner or later (`LinearSchedule.replan`).
- **Accumulation**: a step's examples may come in several micro-batches; each adds the
  *sum* of its losses divided by the step's number of examples, so the step's loss and
  gradient are the mean over all its examples however they were split.
- **Clipping and scaling**: with fp16 the loss is multiplied by a scale before backward
  (small gradients would underflow to 0); the gradients are unscaled before clipping.
- **Divergence**: a loss that became nan or inf stops the run (`check_losses`), where the
  losses are turned into numbers anyway, so that no step waits for the GPU to check it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

from bertlab.errors import ParameterError, TrainingDiverged
from bertlab.layout import IGNORE_INDEX
from bertlab.train.precision import autocast


class LinearSchedule:
    """The multiplier of warmup then linear decay, which a time budget may re-plan mid-run.

    Until `replan` it is `bertlab.optim.warmup_linear`: 0 -> 1 over `warmup_steps`, then a
    straight line to 0 at `total_steps`. `replan(step, total_steps)` moves the end: from
    `step` on, the rate falls in a straight line from where it is to 0 at the new end, so it
    never jumps (inside the warmup, the ramp keeps its length when the new end lies beyond it). A
    callable object, not a lambda, so that the scheduler's `state_dict` saves the plan and a
    resumed run follows it.
    """

    def __init__(self, warmup_ratio: float, total_steps: int):
        self.warmup_ratio, self.total_steps = warmup_ratio, total_steps
        self.warmup_steps = round(warmup_ratio * total_steps)
        self.from_step, self.from_value = self.warmup_steps, 1.0  # the decay's straight line starts here

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        return self.from_value * max(0.0, self.total_steps - step) / max(1, self.total_steps - self.from_step)

    def replan(self, step: int, total_steps: int) -> None:
        """End the schedule at `total_steps` instead, continuing from `step` without a jump."""
        if step == 0:  # nothing trained yet: the plain schedule of the new length
            self.__init__(self.warmup_ratio, total_steps)
            return
        if not (step < self.warmup_steps < total_steps):  # else: the ramp goes on, only its end moves
            self.from_value, self.from_step = self(step), step  # a straight line from here to 0
            self.warmup_steps = min(self.warmup_steps, step)
        self.total_steps = total_steps


def make_schedule(optimizer: torch.optim.Optimizer, warmup_ratio: float, total_steps: int) -> LambdaLR:
    """Linear warmup over round(warmup_ratio x total_steps) steps, then linear decay to 0
    (`bertlab.optim.schedule`'s "linear", as a `LinearSchedule` that a budget can re-plan)."""
    if not 0 <= warmup_ratio <= 1:
        raise ParameterError(f"warmup_ratio must be between 0 and 1, not {warmup_ratio}.")
    return LambdaLR(optimizer, LinearSchedule(warmup_ratio, total_steps))


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch without its labels: what the classifier's forward reads."""
    return {k: v for k, v in batch.items() if k != "labels"}


def pin(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch in pinned (page-locked) host memory, from which a copy to a GPU runs
    asynchronously; `fit` pins the next step's batches ahead of use (`bertlab.train.prefetch`)."""
    return {k: v.pin_memory() for k, v in batch.items()}


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Copy a batch to `device` (non_blocking: from pinned memory the copy overlaps the GPU's
    work on the previous step)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def accumulate(
    model: Any,
    micro_batches: Sequence[dict[str, torch.Tensor]],
    precision: str,
    scaler: torch.amp.GradScaler,
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
    before_forward: Callable[[dict[str, torch.Tensor]], None] | None = None,
    cudagraphs: bool = False,
) -> torch.Tensor:
    """Forward and backward over one step's micro-batches (on the model's device); the step's loss.

    Each micro-batch (input_ids (B, T), ..., labels (B,)) adds sum(cross-entropy) / N, N the
    step's number of examples. Under DistributedDataParallel, `no_sync` (the wrapper's
    method) keeps the processes from averaging gradients before the last micro-batch.
    `cudagraphs` (compile_mode="reduce-overhead"): each forward starts a new CUDA-graph step,
    so the previous micro-batch's outputs (already used by its backward) may be overwritten.
    """
    # a tensor, not a number: no host sync (a packed batch's empty slots are labelled -100)
    num_examples = sum((batch["labels"] != IGNORE_INDEX).sum() for batch in micro_batches)
    total = torch.zeros((), device=micro_batches[0]["labels"].device)
    for i, batch in enumerate(micro_batches):
        if before_forward:
            before_forward(batch)
        if cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        last = i == len(micro_batches) - 1
        with no_sync() if no_sync and not last else contextlib.nullcontext():
            with autocast(batch["labels"].device, precision):
                logits = model(**model_inputs(batch)).logits  # (B, C); with a layout, (S, C) slots
            loss = F.cross_entropy(logits.float(), batch["labels"], reduction="sum",
                                   ignore_index=IGNORE_INDEX) / num_examples
            scaler.scale(loss).backward()
        total += loss.detach()
    return total


def update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
           scaler: torch.amp.GradScaler, max_grad_norm: float) -> None:
    """Clip the accumulated gradients (0: no clipping), step, advance the schedule, zero the gradients."""
    if max_grad_norm > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    if scheduler is not None:  # None: a timing step of the time budget (`bertlab.train.budget`)
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def check_losses(history: Sequence[dict[str, Any]], lr: float) -> None:
    """Raise `TrainingDiverged` at the first entry of `history` whose loss (a number) is nan or inf.

    Once a loss is nan the weights are nan too, and every later prediction is the same class:
    the accuracy would look like a guess, with no word of why.
    """
    for entry in history:
        loss = entry.get("loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            raise TrainingDiverged(
                f"The loss became {loss} at step {entry['step']} with lr {lr:g}: training diverged; lower lr "
                "(2e-5 to 5e-5 is usual for BERT fine-tuning) and train again."
            )
