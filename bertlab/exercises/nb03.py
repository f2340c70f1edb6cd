"""Checks for notebook 03 (losses and optimizers): one SGD step, one Adam step."""

from __future__ import annotations

import torch

from bertlab.exercises import base


@base.register("03.1", "one SGD step", "sgd_step")
def _sgd_step(sgd_step) -> None:
    theta = torch.tensor([1.0, 2.0])
    grad = torch.tensor([-1.0, -2.0])
    answer = sgd_step(theta.clone(), grad.clone(), 0.1)
    if base.compare(answer, theta + 0.1 * grad)[0]:
        raise base.CheckFailed(
            "03.1", "you stepped *along* the gradient, uphill ([0.9, 1.8]); SGD subtracts "
            "lr * grad, and with a negative gradient theta grows."
        )
    base.close("03.1", answer, torch.tensor([1.1, 2.2]),
                what="sgd_step([1, 2], grad=[-1, -2], lr=0.1)")
    p = torch.tensor([0.3, -0.7, 1.2], requires_grad=True)
    p.grad = torch.tensor([0.5, 0.25, -2.0])
    expected = p.detach() - 0.05 * p.grad
    base.close("03.1", sgd_step(p.detach().clone(), p.grad.clone(), 0.05), expected,
                what="a second example with lr=0.05")


def _torch_adam_states(grads: list[torch.Tensor], theta0: torch.Tensor, lr: float,
                       betas: tuple[float, float], eps: float) -> list[tuple]:
    """(theta, m, v) after each step of torch.optim.Adam on the given gradients."""
    p = theta0.clone().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=lr, betas=betas, eps=eps)
    states = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        st = opt.state[p]
        states.append((p.detach().clone(), st["exp_avg"].clone(), st["exp_avg_sq"].clone()))
    return states


@base.register("03.2", "one Adam step", "adam_step")
def _adam_step(adam_step) -> None:
    m = torch.zeros(2, dtype=torch.float64)
    v = torch.tensor([0.2, 0.4], dtype=torch.float64)
    g = torch.tensor([-1.0, -2.0], dtype=torch.float64)
    _, _, v1 = adam_step(torch.zeros(2, dtype=torch.float64), g, m, v.clone(), 5)
    base.close("03.2", v1, torch.tensor([0.2008, 0.4036], dtype=torch.float64), atol=1e-9,
                what="v after one step with beta2=0.999, v_prev=[0.2, 0.4], grad=[-1, -2] "
                "(v averages the *squared* gradient)")
    gen = torch.Generator().manual_seed(3)
    theta = torch.randn(3, generator=gen, dtype=torch.float64)
    grads = [torch.randn(3, generator=gen, dtype=torch.float64) for _ in range(3)]
    expected = _torch_adam_states(grads, theta, 0.1, (0.9, 0.999), 1e-8)
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    for t, (g, (e_theta, e_m, e_v)) in enumerate(zip(grads, expected), start=1):
        theta, m, v = adam_step(theta, g, m, v, t, lr=0.1)
        base.close("03.2", m, e_m, what=f"m after step {t}")
        base.close("03.2", v, e_v, what=f"v after step {t}")
        base.close("03.2", theta, e_theta, what=f"theta after step {t} (did you bias-correct "
                    "both m and v, with t starting at 1?)")
