"""bertlab.check: passing and failing answers, stubs, gradient tables, and the registry."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bertlab import check
from bertlab.autograd import Value
from bertlab.check import CheckFailed


def test_compare_reports_shape_entries_and_nan():
    assert check.compare([1.0, 2.0], torch.tensor([1.0, 2.0])) == (True, "exact")
    ok, why = check.compare(np.zeros((2, 3)), np.zeros((3, 2)))
    assert not ok and why == "shape is (2, 3), expected (3, 2)"
    ok, why = check.compare([1.0, 5.0, 3.0], [1.0, 2.0, 3.0])
    assert not ok and "1 of 3 entries differ (at [1])" in why and "got 5" in why and "expected 2" in why
    ok, why = check.compare([float("nan")], [1.0])
    assert not ok and "NaN" in why
    ok, why = check.compare("seven", 7.0)
    assert not ok and "str" in why
    ok, why = check.compare(1.0 + 1e-9, 1.0)
    assert ok and why.startswith("close")


def test_close_and_equal_raise_readable_messages():
    check.close("x.1", 0.5, 0.5)
    with pytest.raises(CheckFailed) as err:
        check.close("x.1", 0.7, 0.5, what="the loss")
    assert str(err.value) == "[x.1] the loss: got 0.7, expected 0.5 (diff 0.2)."
    assert err.value._render_traceback_() == ["✗ Exercise x.1: the loss: got 0.7, expected 0.5 (diff 0.2)."]
    with pytest.raises(CheckFailed, match="got \\['a'\\], expected \\['b'\\]"):
        check.equal("x.2", ["a"], ["b"])


def test_gradient_table_marks_exact_close_wrong_and_missing(capsys):
    expected = {"W1": torch.ones(2, 2), "b1": torch.zeros(2), "W2": torch.ones(3), "b2": torch.ones(1)}
    answer = {"W1": torch.ones(2, 2), "b1": torch.zeros(2) + 1e-9, "W2": torch.tensor([1.0, 9.0, 1.0])}
    ok, table = check.gradient_table(answer, expected)
    assert not ok
    rows = dict(line.split(None, 1) for line in table.splitlines())
    assert rows["W1"] == "exact"
    assert rows["b1"].startswith("close")
    assert rows["W2"].startswith("wrong: 1 of 3 entries differ (at [1])")
    assert rows["b2"] == "missing"
    with pytest.raises(CheckFailed, match="some gradients are wrong"):
        check.gradients("x.3", answer, expected)
    assert "missing" in capsys.readouterr().out


# Right answers for every exercise of notebooks 00-04, as a learner would write them.
def cosine_similarity(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def simple_tokenize(text):
    return text.lower().split()


def silu_derivative(z):
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


def leaky_relu_with_grad(z, slope=0.01):
    return F.leaky_relu(z, slope), torch.where(z > 0, 1.0, slope).to(z.dtype)


def gelu_tanh(z):
    return F.gelu(z, approximate="tanh")


def tanh_neuron_grads(w, x, b):
    out = torch.tanh(w @ x + b)
    dz = 1 - out**2
    return {"w": dz * x, "x": dz * w, "b": dz}


def mse_weight_grad_entry(X, W, Y, i, j):
    B, k = Y.shape
    return float(sum(2 * ((X[b] @ W[i]) - Y[b, i]) * X[b, j] for b in range(B)) / (B * k))


def value_exp(x):
    out = Value(math.exp(x.data), (x,), "exp")

    def _backward():
        x.grad += out.data * out.grad

    out._backward = _backward
    return out


def nesterov_step(theta, grad, u, lr, momentum):
    u = momentum * u + grad
    return theta - lr * (grad + momentum * u), u


def adam_step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    m = betas[0] * m + (1 - betas[0]) * grad
    v = betas[1] * v + (1 - betas[1]) * grad**2
    m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v


def inverse_sqrt_multiplier(step, warmup_steps):
    return step / warmup_steps if step < warmup_steps else (warmup_steps / step) ** 0.5


def train_loop(model, optimizer, X, y, num_epochs, batch_size, zero_grad=True, per_batch_mean=False):
    losses = []
    for _ in range(num_epochs):
        total, means = 0.0, []
        for start in range(0, len(y), batch_size):
            loss = F.cross_entropy(model(X[start:start + batch_size]), y[start:start + batch_size])
            if zero_grad:
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y[start:start + batch_size])
            means.append(loss.item())
        losses.append(float(np.mean(means)) if per_batch_mean else total / len(y))
    return losses


def balanced_accuracy(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in np.unique(y_true)]))


def early_stopping_epochs(val_losses, patience):
    best, best_loss = 0, float("inf")
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best_loss:
            best, best_loss = epoch, loss
        elif epoch - best >= patience:
            return best, epoch
    return best, len(val_losses)


SOLUTIONS = {
    "00.1": cosine_similarity, "00.2": simple_tokenize,
    "01.1": silu_derivative, "01.2": leaky_relu_with_grad, "01.3": gelu_tanh,
    "02.1": tanh_neuron_grads, "02.2": mse_weight_grad_entry, "02.3": value_exp,
    "03.1": nesterov_step, "03.2": adam_step, "03.3": inverse_sqrt_multiplier,
    "04.1": train_loop, "04.2": balanced_accuracy, "04.3": early_stopping_epochs,
}


@pytest.mark.parametrize("exercise_id", sorted(SOLUTIONS))
def test_right_answers_pass(exercise_id, capsys):
    check.exercise(exercise_id, SOLUTIONS[exercise_id])  # raises CheckFailed if wrong
    assert f"✓ Exercise {exercise_id}" in capsys.readouterr().out


def test_every_part_one_exercise_has_a_solution_here():
    registered = {k for k in check._registry() if k[:2] in {"00", "01", "02", "03", "04"}}
    assert registered == set(SOLUTIONS)


@pytest.mark.parametrize("exercise_id", sorted(SOLUTIONS))
def test_a_stub_gets_a_friendly_message(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="is not written yet: replace `raise NotImplementedError`"):
        check.exercise(exercise_id, stub)


def _value_exp_without_local_derivative(x):
    out = Value(math.exp(x.data), (x,), "exp")

    def _backward():
        x.grad += out.grad

    out._backward = _backward
    return out


def _value_exp_assigning(x):
    out = Value(math.exp(x.data), (x,), "exp")

    def _backward():
        x.grad = out.data * out.grad

    out._backward = _backward
    return out


def _plain_momentum(theta, grad, u, lr, momentum):
    u = momentum * u + grad
    return theta - lr * u, u


WRONG = [
    ("00.1", lambda a, b: float(np.dot(a, b)), "returned the dot product"),
    ("00.2", lambda text: text.lower().split(" "), "gave empty strings"),
    ("01.1", lambda z: torch.sigmoid(z), "product rule"),
    ("01.1", lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z)), "product rule"),
    ("01.2", lambda z, slope=0.01: (F.leaky_relu(z, slope), (z > 0).to(z.dtype)), "plain ReLU's"),
    ("01.2", lambda z, slope=0.01: F.leaky_relu(z, slope), "return a pair"),
    ("01.3", lambda z: F.gelu(z), "that is the exact GELU"),
    ("01.3", lambda z: 0.5 * z * (1 + torch.tanh((2 * math.pi) ** 0.5 * (z + 0.044715 * z**3))), "sqrt\\(2 / pi\\)"),
    ("02.1", lambda w, x, b: {"w": x, "x": w, "b": 1.0}, "that is dz/dw only"),
    ("02.1", lambda w, x, b: {"w": w, "x": x}, "some gradients are wrong"),
    ("02.2", lambda X, W, Y, i, j: 18 * mse_weight_grad_entry(X, W, Y, i, j), "18 times too big"),
    ("02.2", lambda X, W, Y, i, j: 3 * mse_weight_grad_entry(X, W, Y, i, j), "k = 3 times too big"),
    ("02.2", lambda X, W, Y, i, j: 0.5 * mse_weight_grad_entry(X, W, Y, i, j), "keep the 2"),
    ("02.3", lambda x: Value(math.exp(x.data)), "no gradient reached x"),
    ("02.3", _value_exp_without_local_derivative, "multiply by the local derivative"),
    ("02.3", _value_exp_assigning, "not x.grad = "),
    ("03.1", _plain_momentum, "plain momentum"),
    ("03.1", lambda theta, grad, u, lr, momentum: (theta - lr * grad, u), "plain SGD"),
    ("03.2", lambda theta, grad, m, v, t, lr=1e-3: (theta, m, 0.001 * grad), "squared"),
    ("03.3", lambda step, w: (step + 1) / w if step < w else (w / step) ** 0.5, "without a \\+ 1"),
    ("03.3", lambda step, w: step / w if step < w else step**-0.5, "continuous"),
    ("04.1", lambda model, opt, X, y, n, bs: train_loop(model, opt, X, y, n, bs, zero_grad=False), "without optimizer.zero_grad"),
    ("04.1", lambda model, opt, X, y, n, bs: train_loop(model, opt, X, y, n, bs, per_batch_mean=True), "mean of the per-batch"),
    ("04.1", lambda model, opt, X, y, n, bs: [0.0] * n, "weights did not change"),
    ("04.2", lambda y, p: float(np.mean(np.asarray(y) == np.asarray(p))), "plain accuracy"),
    ("04.3", lambda losses, patience: (3, 7) if patience == 3 else (0, 0), "one\\s+epoch late"),
    ("04.3", lambda losses, patience: (int(np.argmin(losses)) + 1, len(losses)), "best loss so far"),
]


@pytest.mark.parametrize("exercise_id,answer,message", WRONG)
def test_wrong_answers_fail_with_a_useful_message(exercise_id, answer, message):
    with pytest.raises(CheckFailed, match=message) as err:
        check.exercise(exercise_id, answer)
    assert err.value.exercise_id == exercise_id


def test_unknown_exercise_and_wrong_number_of_objects():
    with pytest.raises(CheckFailed, match="there is no exercise 99.9"):
        check.exercise("99.9", nesterov_step)
    with pytest.raises(CheckFailed, match="pass nesterov_step to the check"):
        check.exercise("03.1", nesterov_step, nesterov_step)


def test_run_exercise_for_graders():
    assert check.run_exercise("03.1", {"nesterov_step": nesterov_step}) == (True, "passed")
    assert check.run_exercise("03.1", {}) == (False, "nesterov_step not defined")
    ok, message = check.run_exercise("03.1", {"nesterov_step": _plain_momentum})
    assert not ok and "plain momentum" in message
    assert check.run_exercise("99.9", {}) == (False, "unknown exercise 99.9")


def test_is_finite_number():
    assert check.is_finite_number(3) and check.is_finite_number(torch.tensor(2.5))
    assert not check.is_finite_number(float("inf")) and not check.is_finite_number("x")
