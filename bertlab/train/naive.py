"""The loop most tutorials write: the baseline that `bertlab.train` is measured against.

Derived in notebook 11 (and written out in notebook 10). It is correct, and slow for
reasons the fast loop removes: every batch is padded to `max_length` (a 12-token
sentence costs as much as a 128-token one), all arithmetic is fp32, and the optimizer is
a plain, unfused AdamW. There is no evaluation during training and no checkpointing. What
decides the result rather than the speed is shared with `fit`, so the two can be compared
like for like: the parameter groups (`bertlab.train.optimizer.param_groups`: no weight
decay on biases and LayerNorm), the learning-rate schedule (`bertlab.train.step.make_schedule`:
`warmup_ratio`, then linear decay), gradient clipping (`max_grad_norm`), the seed, the
examples, the number of steps and the final metrics (`bertlab.train.evaluation.final_metrics`).
The batches are `fit`'s without bucketing: the same plain shuffle, drawn from the same seed,
so that a difference in accuracy comes from the loops and not from a luckier batch order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bertlab import env
from bertlab.data import Collator
from bertlab.train.batching import BucketBatchSampler
from bertlab.train.config import TrainConfig
from bertlab.train.evaluation import final_metrics
from bertlab.train.loop import FitResult
from bertlab.train.optimizer import param_groups
from bertlab.train.step import check_losses, make_schedule
from bertlab.train.throughput import Meter


def naive_batch(tokenizer: Any, examples: list[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Tensors padded to `max_length` whatever the sentences' lengths: (B, max_length) each."""
    return Collator(tokenizer, max_length=max_length, pad_to_max_length=True)(examples)


def naive_fit(model: Any, tokenizer: Any, data: Any, cfg: TrainConfig, progress: bool = True) -> FitResult:
    """Fine-tune `model` like a tutorial: shuffled DataLoader, fp32, max_length padding, plain AdamW.

    The same arguments as `fit` (model, tokenizer, data from `bertlab.train.setup`) and the
    same settings where they apply (seed, lr, warmup_ratio, weight_decay, max_grad_norm,
    batch_size, num_epochs, max_steps, max_length, max_train_examples, max_eval_examples). A loss
    that becomes nan or inf raises `bertlab.errors.TrainingDiverged`, as in `fit`.
    """
    cfg = cfg.validate()
    device = env.pick_device(cfg.device)  # the run's one device; passed down from here
    train = data.train[: cfg.max_train_examples or None]
    model = model.to(device).train()
    env.seed_everything(cfg.seed)  # dropout, as in `fit`

    # a plain shuffle (no bucketing, so the lengths do not matter), epoch by epoch from the seed
    sampler = BucketBatchSampler([0] * len(train), cfg.batch_size, cfg.seed, bucketing=False)
    # its own generator keeps the DataLoader from drawing on the global one that dropout uses
    loader = DataLoader(train, batch_sampler=sampler, generator=torch.Generator().manual_seed(cfg.seed),
                        collate_fn=lambda b: naive_batch(tokenizer, b, cfg.max_length))
    total = min(cfg.max_steps or len(loader) * cfg.num_epochs, len(loader) * cfg.num_epochs)
    # fit's groups, one tensor at a time (no foreach, no fused kernel)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, foreach=False)
    scheduler = make_schedule(optimizer, cfg.warmup_ratio, total)
    meter, history, step = Meter(model, device, "fp32"), [], 0
    bar = tqdm(total=total, disable=not progress)
    for epoch in range(cfg.num_epochs):
        if step >= total:
            break
        sampler.set_epoch(epoch)
        for batch in loader:
            if step >= total:
                break
            meter.start()
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss  # the model's own mean cross-entropy
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if step == 0:
                meter.stop_warmup(batch["attention_mask"].sum(1).tolist())  # leave the first step's one-time costs out, as `fit` does
            else:
                meter.stop()
                meter.add(batch["attention_mask"].sum(1).tolist())
            step += 1
            history.append({"step": step, "epoch": epoch, "lr": scheduler.get_last_lr()[0], "loss": loss.item()})
            check_losses(history[-1:], cfg.lr)  # a nan loss: stop here, not after scoring nan weights
            bar.update(1)
    bar.close()

    metrics = final_metrics(model, tokenizer, data, cfg, device, "fp32", meter, step, cfg.batch_size)
    return FitResult(model, tokenizer, history, metrics, cfg)
