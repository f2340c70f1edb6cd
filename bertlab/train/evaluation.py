"""Scoring a classifier: `evaluate` on a list of examples, and the final metrics of a run.

Derived in notebook 11. `final_metrics` is the one place where a training run's numbers are
computed: `fit` and the naive loop (`bertlab.train.naive`) both call it, so their metric
names and the way each is computed are the same, and the two can be compared like for like.
"""

from __future__ import annotations

from typing import Any

import torch

from bertlab.data import Collator
from bertlab.train.precision import autocast
from bertlab.train.step import model_inputs
from bertlab.train.throughput import Meter


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
    Works with any classifier whose output has `.logits` (B, C): bertlab's or transformers'.
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
            logits = model(**{k: v.to(device) for k, v in model_inputs(batch).items()}).logits
        probs[chunk] = logits.float().softmax(-1).cpu()  # (B, C)
    model.train(was_training)
    predictions = probs.argmax(-1)
    labels = torch.tensor([ex.label for ex in examples], dtype=torch.long)
    accuracy = (predictions == labels).float().mean().item() if len(examples) else float("nan")
    return {"accuracy": accuracy, "predictions": predictions.tolist(), "probs": probs}


def final_metrics(
    model: Any,
    tokenizer: Any,
    data: Any,
    cfg: Any,
    device: torch.device,
    precision: str,
    meter: Meter,
    steps: int,
    micro_batch_size: int,
    best: tuple[float, int] | None = None,
    world_size: int = 1,
) -> dict[str, Any]:
    """The metrics of a finished run, the same names for every loop.

    ``<split>_accuracy`` (test, or validation for data whose test split has no labels) and
    ``challenge_accuracy`` where the data has one, on the first `cfg.max_eval_examples` of
    each; ``best_validation_accuracy`` and ``best_step`` when validation ran during training
    (`best`); the throughput figures of `meter`; steps, precision, micro-batch size, device.
    """
    n = cfg.max_eval_examples or None

    def score(examples: list[Any]) -> float:
        return evaluate(model, tokenizer, examples[:n], 64, cfg.max_length, device, precision)["accuracy"]

    metrics: dict[str, Any] = {}
    split_name = getattr(data, "eval_split", "test")
    eval_examples = getattr(data, split_name, None) or []
    if eval_examples:
        metrics[f"{split_name}_accuracy"] = score(eval_examples)
    if getattr(data, "challenge", None):
        metrics["challenge_accuracy"] = score(data.challenge)
    if best is not None:
        metrics["best_validation_accuracy"], metrics["best_step"] = best
    metrics.update(meter.summary(world_size))
    metrics.update(steps=steps, precision=precision, micro_batch_size=micro_batch_size, device=device.type)
    return metrics
