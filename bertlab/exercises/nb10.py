"""Checks for notebook 10 (fine-tuning).

10.1 accuracy over the examples of uneven batches (not the mean of per-batch accuracies);
10.2 the share of padding tokens when each batch is padded to its own longest member.
"""

from __future__ import annotations

import torch

from bertlab.exercises import base
from bertlab.train.batching import padding_fraction, split


@base.register("10.1", "accuracy over examples, not batches", "accuracy_over_batches")
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
    if not base.is_finite_number(answer):
        raise base.CheckFailed("10.1", f"return one number, not {type(answer).__name__}.")
    per_batch = sum(float((lo.argmax(-1) == y).float().mean()) for lo, y in batches) / len(batches)
    if abs(float(answer) - per_batch) < 1e-9:
        raise base.CheckFailed(
            "10.1", f"got {per_batch:.4f}, the mean of per-batch accuracies; the short last batch "
            "counts as much as a full one that way. Count correct examples over all examples.")
    base.close("10.1", float(answer), expected, what="accuracy over 9 examples")


@base.register("10.2", "the share of padding in dynamically padded batches", "padding_share")
def _padding_share(padding_share) -> None:
    cases = [([3, 5, 2, 8, 8, 1, 4], 3), ([12, 12, 12, 12], 2), ([7, 30, 9, 11, 6], 2), ([5], 4)]
    for lengths, batch_size in cases:
        batches = split(list(range(len(lengths))), batch_size)  # consecutive batches
        expected = padding_fraction(lengths, batches)
        answer = padding_share(list(lengths), batch_size)
        if not base.is_finite_number(answer):
            raise base.CheckFailed("10.2", f"return one number, not {type(answer).__name__}.")
        to_longest = padding_fraction(lengths, batches, pad_to=max(lengths))
        if abs(float(answer) - to_longest) < 1e-12 and abs(expected - float(answer)) > 1e-12:
            raise base.CheckFailed("10.2", "that pads every batch to the longest sentence of the whole "
                                    "list; pad each batch only to its own longest member.")
        base.close("10.2", float(answer), expected, what=f"padding_share({lengths}, {batch_size})")
