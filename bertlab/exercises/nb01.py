"""Checks for notebook 01 (the forward pass): SiLU's derivative, leaky ReLU, tanh GELU.

Each exercise takes an idea of the notebook somewhere new, and each check names the usual
mistake when it sees it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bertlab.exercises import base


def _grid() -> torch.Tensor:
    return torch.linspace(-6, 6, 25, dtype=torch.float64)


@base.register("01.1", "the derivative of SiLU", "silu_derivative")
def _silu_derivative(silu_derivative) -> None:
    z = _grid().requires_grad_(True)
    (expected,) = torch.autograd.grad(F.silu(z).sum(), z)
    z = z.detach()
    answer = silu_derivative(z.clone())
    s = torch.sigmoid(z)
    for wrong, why in ((s, "sigmoid(z) alone"), (s * (1 - s), "sigmoid'(z) alone"),
                       (z * s * (1 - s), "z * sigmoid'(z) alone")):
        if base.compare(answer, wrong)[0]:
            raise base.CheckFailed(
                "01.1", f"you returned {why}: SiLU is a product, z times sigmoid(z), so its "
                "derivative has two terms, (z)' sigmoid(z) + z sigmoid'(z) (the product rule)."
            )
    base.close("01.1", answer, expected, atol=1e-6, what="SiLU'(z) for z = -6, -5.5, ..., 6")


@base.register("01.2", "leaky ReLU and its derivative", "leaky_relu_with_grad")
def _leaky_relu_with_grad(leaky_relu_with_grad) -> None:
    for slope in (0.01, 0.2):
        z = torch.cat([_grid(), torch.zeros(1, dtype=torch.float64)]).requires_grad_(True)
        (expected_grad,) = torch.autograd.grad(F.leaky_relu(z, slope).sum(), z)
        z = z.detach()
        answer = leaky_relu_with_grad(z.clone(), slope)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise base.CheckFailed("01.2", "return a pair (value, derivative).")
        value, grad = answer
        base.close("01.2", value, F.leaky_relu(z, slope), what=f"leaky_relu(z) with slope {slope}")
        if base.compare(grad, (z > 0).to(z.dtype))[0]:
            raise base.CheckFailed(
                "01.2", "your derivative is 0 for negative z: that is plain ReLU's. Leaky ReLU "
                f"keeps the slope there, so f'(z) = slope ({slope}) for z <= 0."
            )
        base.close("01.2", grad, expected_grad,
                   what=f"f'(z) with slope {slope} (z = -6, ..., 6 and 0; torch uses f'(0) = slope)")


@base.register("01.3", "the tanh approximation of GELU", "gelu_tanh")
def _gelu_tanh(gelu_tanh) -> None:
    z = torch.linspace(-5, 5, 41, dtype=torch.float64)
    answer = gelu_tanh(z.clone())
    if base.compare(answer, F.gelu(z), atol=1e-9)[0]:
        raise base.CheckFailed(
            "01.3", "that is the exact GELU (with erf); this exercise asks for the tanh "
            "approximation, z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))."
        )
    inner_wrong = 0.5 * z * (1 + torch.tanh(math.sqrt(2 * math.pi) * (z + 0.044715 * z**3)))
    if base.compare(answer, inner_wrong)[0]:
        raise base.CheckFailed("01.3", "the factor is sqrt(2 / pi) = 0.798, not sqrt(2 pi).")
    base.close("01.3", answer, F.gelu(z, approximate="tanh"), atol=1e-9,
               what="gelu_tanh(z) for z = -5, -4.75, ..., 5")
