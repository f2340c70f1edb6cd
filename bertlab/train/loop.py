"""The fast fine-tuning loop: `fit` trains the classifier it is handed.

Derived in notebook 11, piece by piece: bf16 autocast (fp16 with a gradient scaler where
bf16 is not native, TF32 for fp32 on GPUs that have it), dynamic padding with length
bucketing or padding-free packed batches (`bertlab.train.packing`), pinned host memory,
AdamW without weight decay on biases and LayerNorm (fused,
`bertlab.train.optimizer`), linear warmup then linear decay, gradient accumulation and
clipping (`bertlab.train.step`), optional `torch.compile`, evaluation every N steps keeping
the best weights, and atomic checkpoints that resume to the same result. It runs under
`torchrun` too (DistributedDataParallel; only rank 0 writes).

`fit(model, tokenizer, data, cfg)` knows nothing about where the model came from (minGPT's
trainer): any classifier whose forward takes input_ids, token_type_ids, attention_mask and
returns `.logits` (bertlab's or transformers'). `bertlab.train.setup` does the loading.
A few hooks (`Hooks`) let a notebook or a test look in without an event framework.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from bertlab import env, interrupts
from bertlab.data import Collator
from bertlab.errors import ParameterError
from bertlab.train import budget, checkpoint
from bertlab.train.batching import BucketBatchSampler, split, token_lengths
from bertlab.train.config import TrainConfig
from bertlab.train.evaluation import evaluate, final_metrics
from bertlab.train.optimizer import make_optimizer
from bertlab.train.packing import packed_collator, sentence_lengths
from bertlab.train.precision import allow_tf32, resolve_precision
from bertlab.train.prefetch import Prefetcher
from bertlab.train.setup import distributed, local_device
from bertlab.train.step import accumulate, check_losses, make_schedule, pin, to_device, update
from bertlab.train.throughput import Meter

PREFETCH_ON = ("cuda",)  # devices whose next batches are made on a thread (bertlab.train.prefetch)


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint (JSON)."""

    epoch: int = 0
    step_in_epoch: int = 0  # optimizer steps done in the current epoch
    global_step: int = 0
    micro_batch_size: int = 0
    best_score: float | None = None
    best_step: int = 0
    evaluated_step: int = -1  # the last step scored (and checkpointed); -1: none yet
    planned_steps: int = 0  # the steps a time budget planned (0: no budget, the configured steps)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Hooks:
    """Optional callbacks: before each micro-batch's forward, after each optimizer step, after each evaluation."""

    before_forward: Callable[[TrainState, dict[str, torch.Tensor]], None] | None = None
    after_step: Callable[[TrainState], None] | None = None
    after_eval: Callable[[TrainState, dict[str, float]], None] | None = None


@dataclass
class FitResult:
    model: Any  # the classifier it was handed (the best weights when evaluation ran)
    tokenizer: Any
    history: list[dict[str, Any]]  # one dict per optimizer step: step, epoch, lr, loss (+ eval)
    metrics: dict[str, Any]
    config: TrainConfig


class Trainer:
    """One run of `fit`: the objects it needs and the steps it takes."""

    def __init__(self, model: Any, tokenizer: Any, data: Any, cfg: TrainConfig, hooks: Hooks | None = None,
                 progress: bool = True):
        self.cfg, self.hooks, self.progress = cfg.validate(), hooks or Hooks(), progress
        self.out = Path(cfg.output_dir) if cfg.output_dir else None
        self.rank, self.world_size = distributed()
        if self.out is not None:  # before any work: never replace an earlier run by accident
            checkpoint.check_output_dir(self.out, cfg.resume, cfg.overwrite)
            if cfg.overwrite and self.rank == 0:
                checkpoint.clear_run(self.out)
        saved = self.saved_state()
        self.device = local_device(env.pick_device(cfg.device))  # the run's one device; passed down from here
        self.precision = resolve_precision(cfg.precision, self.device)
        if self.precision == "fp32":
            allow_tf32(self.device)  # fp32 products on tensor cores where the GPU has TF32
        self.data, self.tokenizer = data, tokenizer
        self.train = data.train[: cfg.max_train_examples or None]
        self.model = model.to(self.device).train()
        env.seed_everything(cfg.seed)  # dropout
        lengths = token_lengths(tokenizer, [ex.text for ex in self.train], cfg.max_length)
        self.sampler = BucketBatchSampler(
            lengths, cfg.batch_size * cfg.grad_accum, cfg.seed, cfg.bucketing, self.rank, self.world_size,
            pool=cfg.bucket_pool,
        )
        per_epoch = len(self.sampler)
        self.total_steps = min(cfg.max_steps or per_epoch * cfg.num_epochs, per_epoch * cfg.num_epochs)
        self.wanted_steps = self.total_steps  # what the settings ask for; a time budget may plan fewer
        self.collate = Collator(tokenizer, max_length=cfg.max_length)
        if cfg.packing:
            epochs = range(-(-self.total_steps // per_epoch))
            self.collate = packed_collator(model, tokenizer, cfg, lengths, [b for e in epochs for b in self.sampler.all_batches(e)])
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay, self.device)
        self.scheduler = make_schedule(self.optimizer, cfg.warmup_ratio, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.state = TrainState(micro_batch_size=cfg.batch_size)
        self.best_weights: dict[str, torch.Tensor] | None = None
        if saved is not None:
            checkpoint.load(self.out / "last", self.model, self.optimizer, self.scheduler, self.scaler)
            self.state = TrainState(**saved["state"])
            self.total_steps = self.state.planned_steps or self.total_steps  # the schedule follows the saved plan
            print(f"resumed from step {self.state.global_step} (epoch {self.state.epoch})")
        self.budget = budget.Budget(cfg.time_budget_s) if cfg.time_budget_s else None
        if self.budget and self.world_size > 1:
            raise ParameterError("time_budget_s plans one process's steps; under torchrun give max_steps instead.")
        self.step_model: Any = self.model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:  # packed: one static shape; padded batches change shape from step to step
            mode = None if cfg.compile_mode == "default" else cfg.compile_mode
            self.step_model = torch.compile(self.step_model, dynamic=not cfg.packing, mode=mode)
        # the next step's batches made (and pinned) on a thread while this step runs: CUDA only
        self.prefetch = Prefetcher(self.make_batches, enabled=self.device.type in PREFETCH_ON)
        self.upcoming: list[Any] | None = None  # the next step's examples, for `prefetch`
        self.meter = Meter(self.model, self.device, self.precision)
        self.steps_run = 0  # steps taken by this process (a resumed run starts again at 0)
        self.updating = False  # inside an optimizer update: a checkpoint now would be half of one

    def saved_state(self) -> dict[str, Any] | None:
        """The checkpoint's state when resuming, after checking it was saved with these settings."""
        if not self.cfg.resume or self.out is None or checkpoint.resumable(self.out / "last") is None:
            return None
        saved = checkpoint.read_state(self.out / "last")
        changed = self.cfg.changes_that_alter_the_run(saved.get("config", {}))
        if changed:
            raise ParameterError(
                f"The run in {self.out} was trained with other settings ({'; '.join(changed)}); resume it with "
                "the saved ones, or start again with --overwrite (overwrite=True) or in another output_dir."
            )
        return saved

    # -- one optimizer step -----------------------------------------------------------
    def make_batches(self, examples: list[Any], micro_batch_size: int) -> list[dict[str, Any]]:
        """One step's micro-batches on the host; pinned on CUDA (`bertlab.train.prefetch`)."""
        batches = [self.collate(micro) for micro in split(examples, micro_batch_size)]
        return [pin(b) for b in batches] if self.device.type == "cuda" else batches

    def accumulate(self, examples: list[Any]) -> tuple[torch.Tensor, list[int]]:
        """Forward and backward over the micro-batches of one step; returns (loss, real lengths)."""
        micro_batches = self.prefetch.get(examples, self.state.micro_batch_size)
        if self.upcoming:  # the next step's batches are made while this one runs
            self.prefetch.start(self.upcoming, self.state.micro_batch_size)
            self.upcoming = None
        lengths = [n for batch in micro_batches for n in sentence_lengths(batch["attention_mask"])]
        hook = self.hooks.before_forward
        on_device = [to_device(b, self.device) for b in micro_batches]
        loss = accumulate(self.step_model, on_device, self.precision,
                          self.scaler, no_sync=self.step_model.no_sync if self.world_size > 1 else None,
                          before_forward=(lambda batch: hook(self.state, batch)) if hook else None,
                          cudagraphs=self.cfg.compile and self.cfg.compile_mode == "reduce-overhead")
        return loss, lengths

    def step(self, examples: list[Any], timing: bool = False) -> tuple[torch.Tensor, list[int]]:
        """One optimizer step; on CUDA out-of-memory, halve the micro-batch and try again.
        `timing`: a step of the budget's warm-up, which leaves the schedule where it is."""
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
        self.updating = not timing
        update(self.model, self.optimizer, None if timing else self.scheduler, self.scaler, self.cfg.max_grad_norm)
        return loss, lengths

    # -- evaluation and checkpoints ------------------------------------------------------
    def _flush_losses(self) -> None:
        """Turn the pending loss tensors into numbers (one GPU sync for many steps)."""
        pending = [e for e in self.state.history if isinstance(e.get("loss"), torch.Tensor)]
        for entry in pending:
            entry["loss"] = entry["loss"].item()
        check_losses(pending, self.cfg.lr)  # nan or inf: stop before scoring or saving broken weights

    def score_split(self, examples: list[Any]) -> dict[str, Any]:
        """`evaluate` on the first `max_eval_examples` of `examples`, with the run's settings."""
        n = self.cfg.max_eval_examples or None
        return evaluate(self.model, self.tokenizer, examples[:n], 64, self.cfg.max_length, self.device, self.precision)

    def evaluate_and_save(self) -> None:
        """Score the validation split, keep the best weights, write the `last` checkpoint."""
        self.state.evaluated_step = self.state.global_step
        self.prefetch.wait()  # its thread may be tokenizing: one tokenizer, one thread at a time
        self.meter.stop()  # evaluation and checkpoints are not training time
        start = time.perf_counter()
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
        self.save_last()
        if self.budget:
            self.budget.add_evaluation(time.perf_counter() - start, budget.eval_sizes(self, 0)[1])
        if self.steps_run:
            self.meter.start()

    def save_last(self) -> None:
        """Write the resumable `last` checkpoint (rank 0, with an output_dir)."""
        if self.out is not None and self.rank == 0:
            self._flush_losses()
            state = {"state": self.state.__dict__, "config": self.cfg.to_dict()}
            checkpoint.save(self.out / "last", self.model, self.optimizer, self.scheduler, state, self.scaler)

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
        try:
            if self.budget:
                budget.warm_up(self)
            while state.epoch < cfg.num_epochs and state.global_step < self.total_steps:
                self.sampler.set_epoch(state.epoch)
                steps = list(self.sampler)[state.step_in_epoch :]
                for i, indices in enumerate(steps):
                    if state.global_step >= self.total_steps:
                        break
                    last = i + 1 == len(steps) or state.global_step + 1 == self.total_steps
                    self.upcoming = None if last else [self.train[j] for j in steps[i + 1]]
                    self.train_step(indices)
                if state.step_in_epoch < len(self.sampler):
                    break  # stopped by max_steps in mid-epoch
                state.epoch, state.step_in_epoch = state.epoch + 1, 0
                if not cfg.eval_every:
                    self.evaluate_and_save()
            # the same weights are never scored twice: not when the last step was an eval_every
            # step or an epoch's end, nor when a run resumes at its end (scored before saving)
            if state.evaluated_step != state.global_step:
                self.evaluate_and_save()
        except KeyboardInterrupt:
            raise self.interrupted() from None
        finally:
            self.prefetch.close()
            self.bar.close()
        self.meter.stop()
        try:  # `last` already holds the finished run (the loop ends scored and saved): nothing to save here
            self._flush_losses()
            self.restore_best()
            best = (state.best_score, state.best_step) if state.best_score is not None else None
            metrics = final_metrics(self.model, self.tokenizer, self.data, cfg, self.device, self.precision,
                                    self.meter, state.global_step, state.micro_batch_size, best, self.world_size)
        except KeyboardInterrupt:
            folder = self.out / "last" if self.out is not None else None
            raise checkpoint.Interrupted(state.global_step, self.total_steps, folder, final=True) from None
        if self.budget:
            metrics.update(time_budget_s=self.budget.seconds, planned_steps=self.total_steps,
                           wanted_steps=self.wanted_steps, replans=self.budget.replans, fit_s=self.budget.spent())
        return FitResult(self.model, self.tokenizer, state.history, metrics, cfg)

    def interrupted(self) -> checkpoint.Interrupted:
        """Checkpoint the steps done (unless Ctrl-C came inside an optimizer update) and say so."""
        self.meter.stop()
        saved = self.out is not None and not self.updating
        if saved:
            self.save_last()
        return checkpoint.Interrupted(self.state.global_step, self.total_steps, self.out / "last" if saved else None)

    def train_step(self, indices: list[int]) -> None:
        """Train on one step's examples, time it, log it; evaluate every `eval_every` steps."""
        state, first = self.state, self.steps_run == 0
        if first:
            self.meter.start()
        start = time.perf_counter()
        loss, lengths = self.step([self.train[i] for i in indices])
        self.steps_run += 1
        state.global_step += 1
        state.step_in_epoch += 1
        self.updating = False  # weights, optimizer, schedule and state agree again
        if first:
            self.meter.stop_warmup(lengths)  # the first step pays one-time costs (allocation, compilation)
            self.meter.start()  # from here the clock runs across steps: no GPU sync per step
        else:
            self.meter.add(lengths)
        lr = self.scheduler.get_last_lr()[0]
        state.history.append({"step": state.global_step, "epoch": state.epoch, "lr": lr, "loss": loss})
        self.bar.update(1)
        if self.hooks.after_step:
            self.hooks.after_step(state)
        if self.budget:
            self.budget.add_step(time.perf_counter() - start)
            budget.follow(self)
        if self.cfg.eval_every and state.global_step % self.cfg.eval_every == 0:
            self.evaluate_and_save()


def fit(model: Any, tokenizer: Any, data: Any, cfg: TrainConfig, hooks: Hooks | None = None,
        progress: bool = True) -> FitResult:
    """Fine-tune `model` (a classifier, e.g. from `bertlab.train.setup`) on `data` with `cfg`'s settings.

    `data` is a `bertlab.data.TextDataset`; `cfg.model` and `cfg.dataset` are only recorded.
    Returns the model (with the best validation weights when evaluation ran), its
    tokenizer, the per-step history and the metrics of `bertlab.train.evaluation.final_metrics`.
    Ctrl-C, or SIGTERM, checkpoints the run (with an output_dir) and raises `checkpoint.Interrupted`,
    one sentence; a loss that became nan or inf raises `bertlab.errors.TrainingDiverged`.
    """
    with interrupts.terminate_as_interrupt():
        return Trainer(model, tokenizer, data, cfg, hooks, progress).run()
