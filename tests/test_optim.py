"""bertlab.optim: step for step against torch.optim, and the schedules against transformers."""

import pytest
import torch
from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

from bertlab import optim
from bertlab.errors import ParameterError

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
]


def _model(dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).to(dtype)


def _train(make_optimizer, dtype, steps=100):
    model = _model(dtype)
    opt = make_optimizer(model.parameters())
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        X = torch.randn(16, 5, generator=gen, dtype=dtype)
        y = torch.randn(16, 2, generator=gen, dtype=dtype)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X), y).backward()
        opt.step()
    return [p.detach() for p in model.parameters()]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name,kwargs", CASES)
def test_100_steps_match_torch_optim(name, kwargs, dtype):
    ours = _train(lambda ps: getattr(optim, name)(ps, **kwargs), dtype)
    ref = _train(lambda ps: getattr(torch.optim, name)(ps, **kwargs), dtype)
    worst = max((a - b).abs().max().item() for a, b in zip(ours, ref))
    assert worst < 1e-6, f"{name} {kwargs}: max abs diff {worst:.2g}"
    assert not all(torch.equal(a, b) for a, b in zip(ours, _model(dtype).parameters()))


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_defaults_match_torch_optim(name):
    p = [torch.nn.Parameter(torch.zeros(1))]
    ours = getattr(optim, name)(p).defaults
    ref = getattr(torch.optim, name)(p).defaults
    for key, value in ours.items():
        assert ref[key] == value, key


def test_param_groups_closure_and_missing_grads():
    a = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    b = torch.nn.Parameter(torch.tensor([3.0]))
    frozen = torch.nn.Parameter(torch.tensor([5.0]))
    opt = optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b, frozen]}], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (a**2).sum() + (b**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(14.0)
    torch.testing.assert_close(a.detach(), torch.tensor([0.8, 1.6]))
    torch.testing.assert_close(b.detach(), torch.tensor([0.0]))
    assert frozen.item() == 5.0  # no gradient, no step


def test_the_sgd_step_from_curriculum():
    theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    theta.grad = torch.tensor([-1.0, -2.0])
    optim.SGD([theta], lr=0.1).step()
    torch.testing.assert_close(theta.detach(), torch.tensor([1.1, 2.2]))


def test_adam_second_moment_from_curriculum():
    theta = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = optim.Adam([theta])
    opt.state[theta].update(step=4, exp_avg=torch.zeros(2, dtype=torch.float64),
                            exp_avg_sq=torch.tensor([0.2, 0.4], dtype=torch.float64))
    theta.grad = torch.tensor([-1.0, -2.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(opt.state[theta]["exp_avg_sq"],
                               torch.tensor([0.2008, 0.4036], dtype=torch.float64))


def test_bad_arguments_are_one_sentence():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ParameterError, match="lr"):
        optim.Adam(p, lr=-1)
    with pytest.raises(ParameterError, match="betas"):
        optim.AdamW(p, betas=(0.9, 1.0))
    with pytest.raises(ParameterError, match="nesterov"):
        optim.SGD(p, nesterov=True)


@pytest.mark.parametrize("kind,reference", [("linear", get_linear_schedule_with_warmup),
                                            ("cosine", get_cosine_schedule_with_warmup)])
def test_schedules_match_transformers(kind, reference):
    def lrs(make):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=2.0)
        sched = make(opt)
        out = []
        for _ in range(60):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    ours = lrs(lambda o: optim.schedule(o, kind, warmup_steps=10, total_steps=50))
    ref = lrs(lambda o: reference(o, num_warmup_steps=10, num_training_steps=50))
    assert ours[:51] == pytest.approx(ref[:51], abs=1e-12)  # up to total_steps
    assert ours[0] == 0.0 and ours[10] == pytest.approx(2.0) and ours[55] == 0.0


def test_schedule_rejects_bad_settings():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ParameterError, match="linear, cosine"):
        optim.schedule(opt, "step", 1, 10)
    with pytest.raises(ParameterError, match="warmup_steps"):
        optim.schedule(opt, "linear", 20, 10)
