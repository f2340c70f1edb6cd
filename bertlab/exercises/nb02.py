"""Checks for notebook 02 (backpropagation): a tanh neuron's gradients by hand, one entry of
a matrix gradient by its indices, and a new operation (exp) for the autograd engine."""

from __future__ import annotations

import math

import torch

from bertlab.autograd import Value
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
    if base.compare(answer.get("w"), x.detach())[0]:
        raise base.CheckFailed(
            "02.1", "do/dw came out as x: that is dz/dw only. The chain rule multiplies it by "
            "tanh's local derivative, 1 - tanh(z)^2."
        )
    base.gradients("02.1", answer, expected)


@base.register("02.2", "one entry of a matrix gradient, by index", "mse_weight_grad_entry")
def _mse_weight_grad_entry(mse_weight_grad_entry) -> None:
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(6, 4, generator=gen, dtype=torch.float64)  # (B, n)
    W = torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)  # (k, n)
    Y = torch.randn(6, 3, generator=gen, dtype=torch.float64)  # (B, k)
    ((X @ W.T - Y) ** 2).mean().backward()
    for i, j in ((0, 0), (2, 1), (1, 3)):
        answer = mse_weight_grad_entry(X.clone(), W.detach().clone(), Y.clone(), i, j)
        if not base.is_finite_number(answer):
            raise base.CheckFailed("02.2", f"return one number, not {type(answer).__name__}.")
        answer, expected = float(answer), W.grad[i, j].item()
        for factor, why in ((18.0, "B * k = 18 times too big: the mean divides by all B * k = 6 * 3 "
                                   "entries of Y_hat"),
                            (3.0, "k = 3 times too big: the mean runs over all B * k entries, not "
                                  "only the B rows"),
                            (0.5, "half the right size: d(e^2)/de = 2e, so keep the 2")):
            if math.isclose(answer, factor * expected, rel_tol=1e-6):
                raise base.CheckFailed("02.2", f"dL/dW[{i}, {j}] is {why}.")
        base.close("02.2", answer, expected, what=f"dL/dW[{i}, {j}] with X (6, 4), W (3, 4), Y (6, 3)")


@base.register("02.3", "exp as a new operation of Value", "value_exp")
def _value_exp(value_exp) -> None:
    a = Value(0.5, label="a")
    out = value_exp(a)
    if not isinstance(out, Value):
        raise base.CheckFailed("02.3", f"return a Value, not {type(out).__name__}.")
    base.close("02.3", out.data, math.exp(0.5), what="value_exp(Value(0.5)).data")
    out.backward()
    if a.grad == 0.0:
        raise base.CheckFailed(
            "02.3", "no gradient reached x: give the new Value its parent, Value(e^x, (x,), "
            "'exp'), and set out._backward, so that backward() can find and call it."
        )
    if math.isclose(a.grad, 1.0):
        raise base.CheckFailed(
            "02.3", "x.grad is out.grad unchanged: multiply by the local derivative, "
            "d e^x / dx = e^x (which is out.data)."
        )
    base.close("02.3", a.grad, math.exp(0.5), what="d e^a / da at a = 0.5")
    a = Value(0.5, label="a")
    (value_exp(a) + value_exp(a)).backward()  # a is used twice
    if math.isclose(a.grad, math.exp(0.5)):
        raise base.CheckFailed(
            "02.3", "with a used twice, e^a + e^a, a.grad should be 2 e^a: write x.grad += ..., "
            "not x.grad = ..., so that gradients from both uses add up."
        )
    x, y = Value(0.7), Value(-1.3)
    loss = value_exp(x * y) * x + value_exp(value_exp(y) * 0.5)
    loss.backward()
    tx, ty = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.7, -1.3))
    t_loss = torch.exp(tx * ty) * tx + torch.exp(torch.exp(ty) * 0.5)
    t_loss.backward()
    base.close("02.3", loss.data, t_loss.item(), what="L = e^(xy) x + e^(e^y / 2)")
    base.close("02.3", [x.grad, y.grad], [tx.grad.item(), ty.grad.item()],
               what="[dL/dx, dL/dy] for L = e^(xy) x + e^(e^y / 2)")
