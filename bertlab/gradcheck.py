"""Finite-difference gradient checking: is a backward pass right?

Derived in notebook 02. The central difference

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

has an error of order eps^2, so in float64 with eps = 1e-6 it agrees with a correct
analytic gradient to about 1e-8. `gradcheck` compares the two for every coordinate of
every input and reports the worst one, so a wrong backward pass points at where it is wrong.
A function with a non-scalar output is checked through a fixed random projection
<r, f(x)>, whose gradient touches every entry of the Jacobian.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from bertlab.errors import BertlabError


class GradcheckError(BertlabError, AssertionError):
    """An analytic gradient disagrees with the finite-difference estimate."""


@dataclass
class GradcheckReport:
    """The result of `gradcheck`: overall verdict and the worst coordinate."""

    ok: bool
    max_abs_error: float
    worst_input: int  # which input tensor
    worst_index: tuple[int, ...]  # which coordinate of it
    analytic: float  # the analytic gradient there
    numeric: float  # the finite-difference estimate there
    num_checked: int  # how many coordinates were compared
    num_bad: int  # how many were outside the tolerance

    def __str__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        where = f"input {self.worst_input}, index {list(self.worst_index)}"
        return (
            f"gradcheck {verdict}: {self.num_bad} of {self.num_checked} coordinates outside "
            f"the tolerance; worst at {where}: analytic {self.analytic:.8g}, "
            f"numeric {self.numeric:.8g}, abs error {self.max_abs_error:.3g}"
        )


def _scalarize(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Wrap `fn` so it returns a scalar: itself, or <r, fn(x)> for a fixed random r."""
    with torch.no_grad():
        out = fn(*inputs)
    if out.numel() == 1:
        return lambda *xs: fn(*xs).reshape(())
    gen = torch.Generator().manual_seed(0)
    r = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    return lambda *xs: (fn(*xs).to(torch.float64) * r).sum()


def numerical_gradient(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
                       eps: float = 1e-6) -> list[torch.Tensor]:
    """Central-difference gradient of a scalar-valued `fn` with respect to each input."""
    xs = [x.detach().clone() for x in inputs]
    grads = []
    with torch.no_grad():
        for x in xs:
            g = torch.zeros_like(x)
            flat, gflat = x.view(-1), g.view(-1)  # views: writing to flat changes x
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + eps
                up = float(fn(*xs))
                flat[i] = old - eps
                down = float(fn(*xs))
                flat[i] = old
                gflat[i] = (up - down) / (2 * eps)
            grads.append(g)
    return grads


def analytic_gradient(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The gradient of a scalar-valued `fn` from `torch.autograd` (zeros where unused)."""
    xs = [x.detach().clone().requires_grad_(True) for x in inputs]
    grads = torch.autograd.grad(fn(*xs), xs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g.detach() for x, g in zip(xs, grads)]


def gradcheck(
    fn: Callable[..., torch.Tensor],
    *inputs: torch.Tensor,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_on_failure: bool = False,
) -> GradcheckReport:
    """Compare `fn`'s autograd gradient with central differences at `inputs`.

    `fn` takes tensors and returns a tensor (any shape). Inputs are copied to float64,
    because float32 finite differences are too noisy to check anything. A coordinate is
    bad when |analytic - numeric| > atol + rtol * |numeric|.
    """
    if not inputs:
        raise GradcheckError("gradcheck needs at least one input tensor: gradcheck(fn, x, ...).")
    xs = [torch.as_tensor(x).detach().to(torch.float64) for x in inputs]
    scalar_fn = _scalarize(fn, xs)
    analytic = analytic_gradient(scalar_fn, xs)
    numeric = numerical_gradient(scalar_fn, xs, eps=eps)
    worst = (-1.0, 0, (0,), 0.0, 0.0)
    checked = bad = 0
    for k, (a, n) in enumerate(zip(analytic, numeric)):
        if a.numel() == 0:
            continue
        err = (a - n).abs()
        bad += int((err > atol + rtol * n.abs()).sum())
        checked += err.numel()
        i = int(err.argmax())
        if err.view(-1)[i] > worst[0]:
            idx = tuple(int(j) for j in torch.unravel_index(torch.tensor(i), a.shape))
            worst = (float(err.view(-1)[i]), k, idx, float(a.view(-1)[i]), float(n.view(-1)[i]))
    report = GradcheckReport(bad == 0, max(worst[0], 0.0), worst[1], worst[2], worst[3],
                             worst[4], checked, bad)
    if raise_on_failure and not report.ok:
        raise GradcheckError(str(report))
    return report
