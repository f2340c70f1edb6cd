"""bertlab.check: passing and failing answers, stubs, gradient tables, and the registry."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bertlab import check
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


# Right answers for every exercise of notebooks 01-04, as a learner would write them.
def sigmoid_derivative(z):
    s = torch.sigmoid(z)
    return s * (1 - s)


def dense_forward(X, W, b):
    return X @ W.T + b


def gelu(z):
    return z * 0.5 * (1 + torch.erf(z / 2**0.5))


def tanh_neuron_grads(w, x, b):
    out = torch.tanh(w @ x + b)
    dz = 1 - out**2
    return {"w": dz * x, "x": dz * w, "b": dz}


def softmax_ce_grad(logits, y):
    return (torch.softmax(logits, dim=-1) - F.one_hot(y, logits.shape[-1])) / len(y)


def sgd_step(theta, grad, lr):
    return theta - lr * grad


def adam_step(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    m = betas[0] * m + (1 - betas[0]) * grad
    v = betas[1] * v + (1 - betas[1]) * grad**2
    m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v


def accuracy_over_batches(correct, sizes):
    return sum(correct) / sum(sizes)


def balanced_accuracy(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in np.unique(y_true)]))


SOLUTIONS = {
    "01.1": sigmoid_derivative, "01.2": dense_forward, "01.3": gelu,
    "02.1": tanh_neuron_grads, "02.2": softmax_ce_grad,
    "03.1": sgd_step, "03.2": adam_step,
    "04.1": accuracy_over_batches, "04.2": balanced_accuracy,
}


@pytest.mark.parametrize("exercise_id", sorted(SOLUTIONS))
def test_right_answers_pass(exercise_id, capsys):
    check.exercise(exercise_id, SOLUTIONS[exercise_id])  # raises CheckFailed if wrong
    assert f"✓ Exercise {exercise_id}" in capsys.readouterr().out


def test_every_part_one_exercise_has_a_solution_here():
    registered = {k for k in check._registry() if k[:2] in {"01", "02", "03", "04"}}
    assert registered == set(SOLUTIONS)


@pytest.mark.parametrize("exercise_id", sorted(SOLUTIONS))
def test_a_stub_gets_a_friendly_message(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="is not written yet: replace `raise NotImplementedError`"):
        check.exercise(exercise_id, stub)


WRONG = [
    ("01.1", lambda z: torch.sigmoid(z), "sigmoid'\\(z\\).*entries differ"),
    ("01.2", lambda X, W, b: X @ W + b, "your code raised RuntimeError"),
    ("01.2", lambda X, W, b: (X @ W.T + b).T, "shape is \\(4, 5\\), expected \\(5, 4\\)"),
    ("02.1", lambda w, x, b: {"w": x, "x": w}, "some gradients are wrong"),
    ("02.2", lambda logits, y: torch.softmax(logits, -1) - F.one_hot(y, 3), "4 times too big"),
    ("03.1", lambda theta, grad, lr: theta + lr * grad, "along\\* the gradient, uphill"),
    ("03.2", lambda theta, grad, m, v, t, lr=1e-3: (theta, m, 0.001 * grad), "squared"),
    ("04.1", lambda c, s: float(np.mean(np.array(c) / np.array(s))), "mean of the per-batch"),
    ("04.2", lambda y, p: float(np.mean(np.asarray(y) == np.asarray(p))), "balanced accuracy on"),
]


@pytest.mark.parametrize("exercise_id,answer,message", WRONG)
def test_wrong_answers_fail_with_a_useful_message(exercise_id, answer, message):
    with pytest.raises(CheckFailed, match=message) as err:
        check.exercise(exercise_id, answer)
    assert err.value.exercise_id == exercise_id


def test_unknown_exercise_and_wrong_number_of_objects():
    with pytest.raises(CheckFailed, match="there is no exercise 99.9"):
        check.exercise("99.9", sgd_step)
    with pytest.raises(CheckFailed, match="pass sgd_step to the check"):
        check.exercise("03.1", sgd_step, sgd_step)


def test_run_exercise_for_graders():
    assert check.run_exercise("03.1", {"sgd_step": sgd_step}) == (True, "passed")
    assert check.run_exercise("03.1", {}) == (False, "sgd_step not defined")
    ok, message = check.run_exercise("03.1", {"sgd_step": lambda t, g, lr: t + lr * g})
    assert not ok and "uphill" in message
    assert check.run_exercise("99.9", {}) == (False, "unknown exercise 99.9")


def test_is_finite_number():
    assert check.is_finite_number(3) and check.is_finite_number(torch.tensor(2.5))
    assert not check.is_finite_number(float("inf")) and not check.is_finite_number("x")
