"""Checks for notebook 10 (fine-tuning).

10.1 accuracy over the examples of uneven batches (not the mean of per-batch accuracies);
10.2 mean pooling of hidden states with an attention mask.
"""

from __future__ import annotations

import torch

from bertlab import check
from bertlab.finetune_basics import mean_pool


@check.register("10.1", "accuracy over examples, not batches", "accuracy_over_batches")
def _accuracy_over_batches(accuracy_over_batches) -> None:
    # three batches of 4, 4 and 1 examples (the last batch of an epoch is often short)
    logits = [
        torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0], [0.5, 0.4]]),
        torch.tensor([[0.1, 0.9], [1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]]),
        torch.tensor([[0.0, 5.0]]),
    ]
    labels = [torch.tensor([0, 1, 1, 1]), torch.tensor([1, 1, 1, 0]), torch.tensor([0])]
    batches = list(zip(logits, labels))
    correct = sum(int((lo.argmax(-1) == y).sum()) for lo, y in batches)
    expected = correct / sum(len(y) for y in labels)  # 4 / 9
    answer = accuracy_over_batches(batches)
    if not check.is_close_number(answer):
        raise check.CheckFailed("10.1", f"return one number, not {type(answer).__name__}.")
    per_batch = sum(float((lo.argmax(-1) == y).float().mean()) for lo, y in batches) / len(batches)
    if abs(float(answer) - per_batch) < 1e-9:
        raise check.CheckFailed(
            "10.1", f"got {per_batch:.4f}, the mean of per-batch accuracies; the short last batch "
            "counts as much as a full one that way. Count correct examples over all examples.")
    check.close("10.1", float(answer), expected, what="accuracy over 9 examples")


@check.register("10.2", "mean pooling with a mask", "masked_mean")
def _masked_mean(masked_mean) -> None:
    gen = torch.Generator().manual_seed(10)
    hidden = torch.randn(3, 6, 5, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]])
    hidden[mask == 0] = 100.0  # padding vectors are junk: they must not leak into the mean
    answer = masked_mean(hidden.clone(), mask.clone())
    check.close("10.2", answer, mean_pool(hidden, mask), atol=1e-5,
                what="masked_mean(hidden (3, 6, 5), mask (3, 6))")
