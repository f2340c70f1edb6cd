"""Optimizers written from scratch, and learning-rate schedules with warmup.

Derived in notebook 03 (losses and optimizers). `SGD`, `RMSprop`, `Adam` and `AdamW` are
`torch.optim.Optimizer` subclasses with the names, arguments and defaults of their
`torch.optim` namesakes, so they drop into any training loop; the tests check that 100 steps
of each leave the same parameters as `torch.optim` does. Each `step` reads as the update
rule in the notebook, one parameter tensor at a time (torch fuses them for speed). Unlike
torch's, a `step` whose gradients hold a nan or inf raises `TrainingDiverged` before any weight
moves: otherwise the weights turn to nan, every prediction becomes one class, and a run with
too high a learning rate ends with a guess's accuracy and no word of why (notebook 04).

Notation: theta the parameters, g the gradient, lr the learning rate, t the step (from 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from bertlab.errors import ParameterError, TrainingDiverged

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


def _check(name: str, value: float, low: float = 0.0, high: float = math.inf) -> None:
    if not low <= value < high:
        raise ParameterError(f"{name} must be in [{low}, {high}), not {value}.")


class _FromScratch(Optimizer):
    """Shared `step` plumbing: closure, no_grad, skip parameters without a gradient, stop on nan or inf."""

    def __init__(self, params: Params, defaults: dict[str, Any]):
        super().__init__(params, defaults)
        self.steps_taken = 0  # counted for the divergence message only

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.steps_taken += 1
        self._check_finite()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad, self.state[p], group)
        return loss

    def _update(self, p: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _check_finite(self) -> None:
        """Raise `TrainingDiverged` if any gradient holds a nan or inf (all are checked before any update)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and not torch.isfinite(p.grad).all():
                    value = "nan" if torch.isnan(p.grad).any() else "inf"
                    raise TrainingDiverged(
                        f"The gradients became {value} at step {self.steps_taken} with lr {group['lr']:g}: "
                        "training diverged; lower lr (a tenth of it is a good next try) and train again."
                    )


class SGD(_FromScratch):
    """theta <- theta - lr * g, optionally with momentum:
    b <- momentum * b + (1 - dampening) * g  (b = g on the first step);  theta <- theta - lr * b.
    With `nesterov`, the step uses g + momentum * b. L2 `weight_decay` adds wd * theta to g."""

    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        _check("lr", lr)
        _check("momentum", momentum)
        _check("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ParameterError("nesterov=True needs momentum > 0 and dampening = 0.")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        mu = group["momentum"]
        if mu:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.clone()
            else:
                state["momentum_buffer"].mul_(mu).add_(g, alpha=1 - group["dampening"])
            buf = state["momentum_buffer"]
            g = g + mu * buf if group["nesterov"] else buf
        p.add_(g, alpha=-group["lr"])  # minus: we walk *against* the gradient


class RMSprop(_FromScratch):
    """s <- alpha * s + (1 - alpha) * g^2;  theta <- theta - lr * g / (sqrt(s) + eps).
    With momentum: b <- momentum * b + g / (sqrt(s) + eps);  theta <- theta - lr * b."""

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0):
        _check("lr", lr)
        _check("alpha", alpha, 0.0, 1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        _check("momentum", momentum)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        super().__init__(params, defaults)

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if "square_avg" not in state:
            state["square_avg"] = torch.zeros_like(p)
        s = state["square_avg"]
        s.mul_(group["alpha"]).add_((1 - group["alpha"]) * g * g)
        step = g / (s.sqrt() + group["eps"])
        if group["momentum"]:
            buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
            step = buf.mul_(group["momentum"]).add_(step)
        p.add_(step, alpha=-group["lr"])


class Adam(_FromScratch):
    """m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2  (the *squared* gradient);
    m_hat = m / (1 - b1^t);  v_hat = v / (1 - b2^t);  theta <- theta - lr m_hat / (sqrt(v_hat) + eps).
    `weight_decay` here is L2: it adds wd * theta to g *before* the moments (see AdamW)."""

    decoupled = False

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        _check("lr", lr)
        _check("betas[0]", betas[0], 0.0, 1.0)
        _check("betas[1]", betas[1], 0.0, 1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        lr, wd, (b1, b2) = group["lr"], group["weight_decay"], group["betas"]
        if wd and self.decoupled:
            p.mul_(1 - lr * wd)  # AdamW: shrink theta directly, outside the moments
        elif wd:
            g = g + wd * p
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        m.mul_(b1).add_((1 - b1) * g)
        v.mul_(b2).add_((1 - b2) * g * g)
        m_hat = m / (1 - b1**t)  # bias correction: m and v start at 0
        v_hat = v / (1 - b2**t)
        p.sub_(lr * m_hat / (v_hat.sqrt() + group["eps"]))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, arXiv:1711.05101):
    theta <- theta (1 - lr wd) first, then the Adam step on the plain gradient."""

    decoupled = True

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


# ---------------------------------------------------------------------------------------
# Learning-rate schedules: a multiplier of the base lr for each step


def warmup_linear(step: int, warmup_steps: int, total_steps: int) -> float:
    """0 -> 1 linearly over `warmup_steps`, then 1 -> 0 linearly at `total_steps`."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """0 -> 1 linearly over `warmup_steps`, then half a cosine from 1 down to 0 at
    `total_steps` (where it stays; transformers' version would rise again)."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))  # stays 0 after total_steps


SCHEDULES = {"linear": warmup_linear, "cosine": warmup_cosine}


def schedule(optimizer: Optimizer, kind: str, warmup_steps: int, total_steps: int) -> LambdaLR:
    """A scheduler whose lr at step s is base_lr * multiplier(s); call `.step()` after each
    optimizer step. `kind` is "linear" or "cosine"."""
    if kind not in SCHEDULES:
        raise ParameterError(f"schedule kind must be one of {', '.join(SCHEDULES)}, not {kind!r}.")
    if not 0 <= warmup_steps <= total_steps:
        raise ParameterError(
            f"warmup_steps ({warmup_steps}) must be between 0 and total_steps ({total_steps})."
        )
    fn = SCHEDULES[kind]
    return LambdaLR(optimizer, lambda s: fn(s, warmup_steps, total_steps))
