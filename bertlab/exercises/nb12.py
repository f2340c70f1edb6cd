"""Checks for notebook 12 (after training).

12.1 symmetric per-tensor int8 quantization of a weight matrix;
12.2 gradient x input attribution of one logit.
"""

from __future__ import annotations

import torch

from bertlab.exercises import base


@base.register("12.1", "symmetric int8 quantization", "quantize_int8")
def _quantize_int8(quantize_int8) -> None:
    gen = torch.Generator().manual_seed(12)
    w = torch.randn(8, 16, generator=gen) * 0.05
    w[3, 7] = -0.4  # one large weight sets the scale
    answer = quantize_int8(w.clone())
    if not isinstance(answer, tuple) or len(answer) != 2:
        raise base.CheckFailed("12.1", "return a pair (q, scale).")
    q, scale = answer
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        raise base.CheckFailed("12.1", f"q must be a torch.int8 tensor, not {getattr(q, 'dtype', type(q))}.")
    expected_scale = w.abs().max() / 127
    base.close("12.1", float(scale), float(expected_scale), rtol=1e-6, what="scale = max|w| / 127")
    expected_q = torch.round(w / expected_scale).clamp(-127, 127).to(torch.int8)
    base.equal("12.1", q.tolist(), expected_q.tolist(), what="q = round(w / scale)")
    err = (q.float() * float(scale) - w).abs().max()
    if err > expected_scale / 2 + 1e-7:
        raise base.CheckFailed("12.1", f"dequantized q * scale is off by {err:.3g} > scale / 2.")


@base.register("12.2", "gradient x input", "grad_x_input")
def _grad_x_input(grad_x_input) -> None:
    gen = torch.Generator().manual_seed(122)
    weight = torch.randn(4, 3, generator=gen, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:  # (T, H) -> logits (C,): a tiny nonlinear "model"
        return torch.tanh(x @ weight).sum(0) + x.sum() * 0.1

    x = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    for target in (0, 2):
        leaf = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(leaf)[target], leaf)
        expected = (grad * x).sum(-1)
        answer = grad_x_input(f, x.clone(), target)
        base.close("12.2", answer, expected, atol=1e-8,
                    what=f"scores (T,) for target class {target}")
