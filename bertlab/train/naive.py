"""The loop most tutorials write: the baseline that `bertlab.train` is measured against.

Derived in notebook 11 (and written out in notebook 10). It is correct, and slow for
reasons the fast loop removes: every batch is padded to `max_length` (a 12-token
sentence costs as much as a 128-token one), all arithmetic is fp32, and the optimizer is
a plain, unfused AdamW over every parameter (weight decay on biases and LayerNorm too).
There is no evaluation during training and no checkpointing. What decides the result
rather than the speed is shared with `fit`, so the two can be compared like for like:
the learning-rate schedule (`warmup_ratio`, then linear decay), `weight_decay`,
gradient clipping (`max_grad_norm`), the seed, the examples and the number of steps. The
batches are `fit`'s without bucketing: the same plain shuffle, drawn from the same seed, so
that a difference in accuracy comes from the loops and not from a luckier batch order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bertlab import env, hub
from bertlab.data import Collator, load_text_dataset
from bertlab.train.batching import BucketBatchSampler
from bertlab.train.config import TrainConfig
from bertlab.train.loop import FitResult, evaluate, warmup_linear
from bertlab.train.throughput import Meter


def naive_batch(tokenizer: Any, examples: list[Any], max_length: int) -> dict[str, torch.Tensor]:
    """Tensors padded to `max_length` whatever the sentences' lengths: (B, max_length) each."""
    return Collator(tokenizer, max_length=max_length, pad_to_max_length=True)(examples)


def naive_fit(cfg: TrainConfig, data: Any = None, progress: bool = True) -> FitResult:
    """Fine-tune like a tutorial: shuffled DataLoader, fp32, max_length padding, plain AdamW.

    Uses the same settings as `fit` where they apply (model, dataset, seed, lr, warmup_ratio,
    weight_decay, max_grad_norm, batch_size, num_epochs, max_steps, max_length), so that the
    two can be compared like for like.
    """
    cfg = cfg.validate()
    device = env.pick_device(cfg.device)  # the run's one device; passed down from here
    data = data if data is not None else load_text_dataset(cfg.dataset)
    train = data.train[: cfg.max_train_examples or None]
    env.seed_everything(cfg.seed)
    tokenizer = hub.load_tokenizer(cfg.model)
    model = hub.load_classifier(cfg.model, num_labels=len(data.label_names)).to(device)
    model.train()

    # a plain shuffle (no bucketing, so the lengths do not matter), epoch by epoch from the seed
    sampler = BucketBatchSampler([0] * len(train), cfg.batch_size, cfg.seed, bucketing=False)
    # its own generator keeps the DataLoader from drawing on the global one that dropout uses
    loader = DataLoader(train, batch_sampler=sampler, generator=torch.Generator().manual_seed(cfg.seed),
                        collate_fn=lambda b: naive_batch(tokenizer, b, cfg.max_length))
    total = min(cfg.max_steps or len(loader) * cfg.num_epochs, len(loader) * cfg.num_epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = warmup_linear(optimizer, round(cfg.warmup_ratio * total), total)
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
            bar.update(1)
    bar.close()

    metrics: dict[str, Any] = {}
    split = data.eval_split
    examples = getattr(data, split) or []
    n = cfg.max_eval_examples or None
    if examples:
        metrics[f"{split}_accuracy"] = evaluate(model, tokenizer, examples[:n], 64, cfg.max_length, device)["accuracy"]
    if data.challenge:
        metrics["challenge_accuracy"] = evaluate(model, tokenizer, data.challenge[:n], 64, cfg.max_length, device)["accuracy"]
    metrics.update(meter.summary(), steps=step, precision="fp32", device=device.type)
    return FitResult(model, tokenizer, history, metrics, cfg)
