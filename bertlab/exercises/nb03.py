"""Checks for notebook 03 (losses and optimizers): a Nesterov step, an Adam step, and the
inverse-square-root schedule. Each check names the usual mistake when it sees it."""

from __future__ import annotations

import math

import torch

from bertlab.exercises import base


@base.register("03.1", "one step of Nesterov momentum", "nesterov_step")
def _nesterov_step(nesterov_step) -> None:
    gen = torch.Generator().manual_seed(1)
    theta0 = torch.randn(3, generator=gen, dtype=torch.float64)
    grads = [torch.randn(3, generator=gen, dtype=torch.float64) for _ in range(4)]
    lr, mu = 0.1, 0.9
    p = torch.nn.Parameter(theta0.clone())
    opt = torch.optim.SGD([p], lr=lr, momentum=mu, nesterov=True)
    theta, u = theta0.clone(), torch.zeros(3, dtype=torch.float64)
    plain_theta, plain_u = theta0.clone(), torch.zeros(3, dtype=torch.float64)
    for t, g in enumerate(grads, start=1):
        answer = nesterov_step(theta.clone(), g.clone(), u.clone(), lr, mu)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise base.CheckFailed("03.1", "return a pair (theta, u).")
        plain_u = mu * plain_u + g
        plain_theta = plain_theta - lr * plain_u
        p.grad = g.clone()
        opt.step()
        if t == 1 and base.compare(answer[0], theta0 - lr * g)[0]:
            raise base.CheckFailed(
                "03.1", "your first step is theta - lr g, the step of plain SGD and of plain "
                "momentum: Nesterov steps along g + momentum * u, with u already updated to g "
                "on the first step."
            )
        if t > 1 and base.compare(answer[0], plain_theta)[0]:
            raise base.CheckFailed(
                "03.1", "that is plain momentum (theta - lr u): Nesterov looks one step ahead "
                "and steps along g + momentum * u."
            )
        theta, u = answer
        base.close("03.1", theta, p.detach(), what=f"theta after step {t} (torch.optim.SGD, "
                   "nesterov=True, lr 0.1, momentum 0.9)")


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


@base.register("03.3", "the inverse-square-root schedule", "inverse_sqrt_multiplier")
def _inverse_sqrt_multiplier(inverse_sqrt_multiplier) -> None:
    warmup = 100
    steps = [0, 1, 50, 99, 100, 101, 400, 10_000]
    answers = [inverse_sqrt_multiplier(s, warmup) for s in steps]
    if not all(base.is_finite_number(a) for a in answers):
        raise base.CheckFailed("03.3", "return one finite number for every step.")
    answers = [float(a) for a in answers]
    if math.isclose(answers[0], 1 / warmup):
        raise base.CheckFailed(
            "03.3", f"at step 0 you return {answers[0]:g}, not 0: the steps count from 0, so "
            "warmup is step / warmup_steps, without a + 1."
        )
    if math.isclose(answers[steps.index(400)], 1 / math.sqrt(400)):
        raise base.CheckFailed(
            "03.3", "after warmup you return 1 / sqrt(step), which drops from 1 to 0.1 at step "
            "100: multiply by sqrt(warmup_steps), i.e. sqrt(warmup_steps / step), so the "
            "schedule is continuous and equals 1 at the end of warmup."
        )
    expected = [s / warmup if s < warmup else math.sqrt(warmup / s) for s in steps]
    base.close("03.3", answers, expected, what=f"the multipliers at steps {steps} (warmup 100)")
