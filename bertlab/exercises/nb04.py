"""Checks for notebook 04 (training a classifier): accuracy over batches, balanced accuracy."""

from __future__ import annotations

import numpy as np

from bertlab.exercises import base


@base.register("04.1", "accuracy over uneven batches", "accuracy_over_batches")
def _accuracy_over_batches(accuracy_over_batches) -> None:
    correct, sizes = [30, 28, 1], [32, 32, 7]  # 71 examples; the last batch is short
    answer = accuracy_over_batches(correct, sizes)
    wrong = float(np.mean(np.array(correct) / np.array(sizes)))
    if base.compare(answer, wrong)[0]:
        raise base.CheckFailed(
            "04.1", f"{answer:.4f} is the mean of the per-batch accuracies, which gives the "
            "short last batch as much weight as a full one; divide the correct count by the "
            "number of examples."
        )
    base.close("04.1", answer, 59 / 71, what="accuracy for correct=[30, 28, 1], sizes=[32, 32, 7]")


@base.register("04.2", "balanced accuracy", "balanced_accuracy")
def _balanced_accuracy(balanced_accuracy) -> None:
    from sklearn.metrics import (
        balanced_accuracy_score,  # imported here: slow to import, rarely needed
    )

    rng = np.random.default_rng(4)
    y_true = (rng.random(200) < 0.2).astype(int)  # imbalanced: about 20% positive
    y_pred = np.where(rng.random(200) < 0.8, y_true, 1 - y_true)
    base.close("04.2", balanced_accuracy(y_true, y_pred), balanced_accuracy_score(y_true, y_pred),
                what="balanced accuracy on 200 imbalanced labels")
    base.close("04.2", balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])), 0.5,
                what="predicting 'always 0' on [0, 0, 0, 1]")
