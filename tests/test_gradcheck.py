"""bertlab.gradcheck: agrees with torch.autograd.gradcheck and finds the wrong coordinate."""

import pytest
import torch

from bertlab.gradcheck import GradcheckError, gradcheck, numerical_gradient


class BadSquare(torch.autograd.Function):
    """x**2 with a backward pass that is wrong in one place (index 2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**2

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        grad = 2 * x
        grad.view(-1)[2] += 0.5
        return grad * grad_out


def test_numerical_gradient_matches_autograd():
    x = torch.randn(4, 3, dtype=torch.float64)
    fn = lambda t: (t.sin() * t).sum()
    (num,) = numerical_gradient(fn, [x])
    torch.testing.assert_close(num, x.sin() + x * x.cos(), atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, w: torch.tanh(x @ w).sum(),
        lambda x, w: torch.softmax(x @ w, dim=-1),  # non-scalar output
        lambda x, w: torch.nn.functional.cross_entropy(x @ w, torch.tensor([0, 2, 1])),
    ],
)
def test_correct_functions_pass_like_torch(fn):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    w = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    report = gradcheck(fn, x, w)
    assert report.ok, str(report)
    assert report.num_checked == 24 and report.num_bad == 0
    assert report.max_abs_error < 1e-7
    assert torch.autograd.gradcheck(fn, (x.requires_grad_(), w.requires_grad_()))


def test_a_wrong_backward_is_caught_at_the_right_coordinate():
    x = torch.tensor([0.5, -1.0, 2.0, 3.0], dtype=torch.float64)
    report = gradcheck(lambda t: BadSquare.apply(t).sum(), x)
    assert not report.ok
    assert report.worst_input == 0 and report.worst_index == (2,)
    assert report.num_bad == 1
    assert report.analytic == pytest.approx(4.5) and report.numeric == pytest.approx(4.0)
    text = str(report)
    assert "FAILED" in text and "index [2]" in text and "analytic 4.5" in text
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(lambda t: BadSquare.apply(t).sum(), (x.clone().requires_grad_(),))
    with pytest.raises(GradcheckError, match="index \\[2\\]"):
        gradcheck(lambda t: BadSquare.apply(t).sum(), x, raise_on_failure=True)


def test_worst_coordinate_in_the_second_input():
    def fn(a, b):
        return (a * 2).sum() + BadSquare.apply(b).sum()

    report = gradcheck(fn, torch.ones(3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64))
    assert not report.ok and report.worst_input == 1 and report.worst_index == (0, 2)


def test_inputs_are_not_changed_and_float32_is_promoted():
    x = torch.randn(5)
    before = x.clone()
    report = gradcheck(lambda t: (t**3).sum(), x)
    assert report.ok
    assert torch.equal(x, before)


def test_needs_an_input():
    with pytest.raises(GradcheckError, match="at least one input"):
        gradcheck(lambda: torch.tensor(1.0))
