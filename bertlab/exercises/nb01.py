"""Checks for notebook 01 (the forward pass): sigmoid's derivative, a dense layer, GELU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.exercises import base


@base.register("01.1", "the derivative of the sigmoid", "sigmoid_derivative")
def _sigmoid_derivative(sigmoid_derivative) -> None:
    z = torch.linspace(-6, 6, 13, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(torch.sigmoid(z).sum(), z)
    answer = sigmoid_derivative(z.detach())
    base.close("01.1", answer, expected, atol=1e-6, what="sigmoid'(z) for z = -6, -5, ..., 6")


@base.register("01.2", "a dense layer on a batch", "dense_forward")
def _dense_forward(dense_forward) -> None:
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(5, 3, generator=gen)  # 5 examples, 3 features
    W = torch.randn(4, 3, generator=gen)  # 4 outputs, like nn.Linear(3, 4).weight
    b = torch.randn(4, generator=gen)
    base.close("01.2", dense_forward(X, W, b), F.linear(X, W, b), atol=1e-5,
                what="dense_forward(X, W, b) with X (5, 3), W (4, 3), b (4,)")


@base.register("01.3", "GELU with the error function", "gelu")
def _gelu(gelu) -> None:
    z = torch.linspace(-4, 4, 17, dtype=torch.float64)
    base.close("01.3", gelu(z), F.gelu(z), atol=1e-6, what="gelu(z) for z = -4, -3.5, ..., 4")
