"""Checks for notebook 04 (training a classifier): a training loop of your own, balanced
accuracy, and early stopping as a rule. Each check names the usual mistake when it sees it."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from bertlab.exercises import base


def _problem() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(50, 4, generator=gen)  # 50 examples: batches of 16, 16, 16 and 2
    y = (X @ torch.tensor([1.0, -2.0, 0.5, 0.0]) > 0).long()
    return X, y


def _model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.5)


def _reference(X, y, num_epochs, batch_size, zero_grad=True, per_batch_mean=False):
    model, opt = _model_and_optimizer()
    losses = []
    for _ in range(num_epochs):
        total, batch_means = 0.0, []
        for start in range(0, len(y), batch_size):
            X_b, y_b = X[start:start + batch_size], y[start:start + batch_size]
            loss = F.cross_entropy(model(X_b), y_b)
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(y_b)
            batch_means.append(loss.item())
        losses.append(float(np.mean(batch_means)) if per_batch_mean else total / len(y))
    return [p.detach().clone() for p in model.parameters()], losses


@base.register("04.1", "a training loop of your own", "train_loop")
def _train_loop(train_loop) -> None:
    X, y = _problem()
    num_epochs, batch_size = 3, 16
    model, opt = _model_and_optimizer()
    start = [p.detach().clone() for p in model.parameters()]
    answer = train_loop(model, opt, X.clone(), y.clone(), num_epochs, batch_size)
    params = [p.detach().clone() for p in model.parameters()]
    if all(torch.equal(a, b) for a, b in zip(params, start)):
        raise base.CheckFailed(
            "04.1", "the weights did not change: call optimizer.step() after loss.backward(), "
            "and optimizer.zero_grad() before backward(), not between backward() and step()."
        )
    no_zero_grad, _ = _reference(X, y, num_epochs, batch_size, zero_grad=False)
    if all(base.compare(a, b)[0] for a, b in zip(params, no_zero_grad)):
        raise base.CheckFailed(
            "04.1", "your weights are those of a loop without optimizer.zero_grad(): backward() "
            "adds to .grad, so without zeroing it every step uses the sum of all earlier gradients."
        )
    expected_params, expected_losses = _reference(X, y, num_epochs, batch_size)
    for name, a, e in zip(("weight", "bias"), params, expected_params):
        base.close("04.1", a, e, atol=1e-5, what=f"the model's {name} after 3 epochs (batches in order, "
                   "one step per batch)")
    if not isinstance(answer, (list, tuple)) or len(answer) != num_epochs:
        raise base.CheckFailed("04.1", f"return a list with one loss per epoch ({num_epochs} numbers).")
    answer = [float(a) for a in answer]
    _, per_batch = _reference(X, y, num_epochs, batch_size, per_batch_mean=True)
    if base.compare(answer, per_batch, atol=1e-6)[0]:
        raise base.CheckFailed(
            "04.1", "your epoch losses are the mean of the per-batch losses, which gives the last "
            "batch of 2 examples as much weight as a full one of 16; weight each batch's loss by "
            "its size and divide by the number of examples."
        )
    base.close("04.1", answer, expected_losses, atol=1e-5,
               what="the mean training loss per example of each epoch")


@base.register("04.2", "balanced accuracy", "balanced_accuracy")
def _balanced_accuracy(balanced_accuracy) -> None:
    from sklearn.metrics import (
        balanced_accuracy_score,  # imported here: slow to import, rarely needed
    )

    rng = np.random.default_rng(4)
    y_true = (rng.random(200) < 0.2).astype(int)  # imbalanced: about 20% positive
    y_pred = np.where(rng.random(200) < 0.8, y_true, 1 - y_true)
    answer = balanced_accuracy(y_true, y_pred)
    if math.isclose(float(answer), float(np.mean(y_true == y_pred))):
        raise base.CheckFailed(
            "04.2", f"{float(answer):.4f} is plain accuracy, which the majority class dominates; "
            "compute the recall of each class separately and average those."
        )
    base.close("04.2", answer, balanced_accuracy_score(y_true, y_pred),
               what="balanced accuracy on 200 imbalanced labels")
    base.close("04.2", balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])), 0.5,
                what="predicting 'always 0' on [0, 0, 0, 1]")


def _early_stopping_reference(val_losses: list[float], patience: int) -> tuple[int, int]:
    best_epoch, best_loss = 0, math.inf
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best_loss:
            best_epoch, best_loss = epoch, loss
        elif epoch - best_epoch >= patience:
            return best_epoch, epoch
    return best_epoch, len(val_losses)


@base.register("04.3", "early stopping as a rule", "early_stopping_epochs")
def _early_stopping_epochs(early_stopping_epochs) -> None:
    cases = [
        ([0.9, 0.7, 0.6, 0.65, 0.62, 0.61, 0.7, 0.8], 3),  # best at 3; 4, 5, 6 do not beat it: stop at 6
        ([0.9, 0.8, 0.7, 0.6, 0.5], 2),  # always improving: runs to the end
        ([0.5, 0.6, 0.55, 0.52, 0.51, 0.49, 0.6], 4),  # each epoch beats the last, not the best: stop at 5
        ([0.8, 0.6, 0.6, 0.6, 0.7], 2),  # a tie is not an improvement: stop at 4
    ]
    for losses, patience in cases:
        expected = _early_stopping_reference(losses, patience)
        answer = early_stopping_epochs(list(losses), patience)
        answer = tuple(int(a) for a in answer) if isinstance(answer, (tuple, list)) else answer
        if isinstance(answer, tuple) and len(answer) == 2 and answer[1] == expected[1] + 1:
            raise base.CheckFailed(
                "04.3", f"for {losses} with patience {patience} you stop at epoch {answer[1]}, one "
                f"epoch late: stop as soon as epoch - best_epoch >= patience (epoch {expected[1]})."
            )
        base.equal("04.3", answer, expected,
                   what=f"(best_epoch, stop_epoch) for {losses}, patience {patience} (compare with the "
                   "best loss so far, not the previous epoch's; a tie is no improvement)")
