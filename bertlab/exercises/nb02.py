"""Checks for notebook 02 (backpropagation): a tanh neuron's gradients, softmax-CE's p - y."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.exercises import base


@base.register("02.1", "the gradients of a tanh neuron by hand", "tanh_neuron_grads")
def _tanh_neuron_grads(tanh_neuron_grads) -> None:
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([1.5, 0.3, -0.2], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    torch.tanh(w @ x + b).backward()
    expected = {"w": w.grad, "x": x.grad, "b": b.grad}
    answer = tanh_neuron_grads(w.detach().clone(), x.detach().clone(), b.detach().clone())
    if not isinstance(answer, dict):
        raise base.CheckFailed("02.1", "return a dict {'w': ..., 'x': ..., 'b': ...}.")
    base.gradients("02.1", answer, expected)


@base.register("02.2", "the gradient of softmax cross-entropy", "softmax_ce_grad")
def _softmax_ce_grad(softmax_ce_grad) -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 2, 1, 2])
    F.cross_entropy(logits, y).backward()  # the mean over the batch of 4
    answer = softmax_ce_grad(logits.detach().clone(), y)
    ok, _ = base.compare(answer, logits.grad * len(y))
    if ok:
        raise base.CheckFailed(
            "02.2", "your gradient is 4 times too big: the loss is the *mean* over the 4 "
            "examples, so divide p - y by the batch size."
        )
    base.close("02.2", answer, logits.grad, what="dL/dlogits for a batch of 4, 3 classes")
