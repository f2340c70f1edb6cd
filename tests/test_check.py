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


# Notebooks 05-09: right answers, the usual mistakes, and the stubs of the student edition.
def truncate_pair(a, b, budget):
    if len(a) + len(b) <= budget:
        return list(a), list(b)
    keep_short = min(len(a), len(b))
    if 2 * keep_short > budget:
        keep_short = budget // 2
    keep_long = budget - keep_short
    return (a[:keep_long], b[:keep_short]) if len(a) > len(b) else (a[:keep_short], b[:keep_long])


def pad_batch(rows, pad_id):
    width = max(map(len, rows))
    return ([r + [pad_id] * (width - len(r)) for r in rows],
            [[1] * len(r) + [0] * (width - len(r)) for r in rows])


def join_pieces(pieces, keep_marks=False, glue=True):
    words = []
    for piece in pieces:
        if glue and piece.startswith("##") and words:
            words[-1] += piece if keep_marks else piece[2:]
        else:
            words.append(piece)
    return words


def _only_second(a, b, budget):
    return a, b[:max(0, budget - len(a))]


def _halves(a, b, budget):
    return a[:budget // 2], b[:budget - budget // 2]


def _odd_to_the_first(a, b, budget):
    if len(a) + len(b) > budget and 2 * min(len(a), len(b)) > budget:
        return a[:budget - budget // 2], b[:budget // 2]
    return truncate_pair(a, b, budget)


def causal_attention(Q, K, V, keep="tril", scale=True, after=False):
    T, d = Q.shape
    allowed = getattr(torch.ones(T, T, dtype=torch.bool), keep)()
    scores = Q @ K.T / (d**0.5 if scale else 1.0)
    if after:
        return (scores.softmax(-1) * allowed) @ V
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ V


def masked_softmax(scores, attention_mask):
    return scores.masked_fill(attention_mask[:, None, :] == 0, float("-inf")).softmax(-1)


def window_mask(T, window):
    t = torch.arange(T)
    return (t[:, None] - t[None, :]).abs() <= window


def pre_ln_block(X, layer):
    att = layer.attention
    A = X + att.output.dense(att.self(att.output.LayerNorm(X))[0])
    return A + layer.output.dense(F.gelu(layer.intermediate.dense(layer.output.LayerNorm(A))))


def _post_ln_block(X, layer):
    att = layer.attention
    A = att.output.LayerNorm(X + att.output.dense(att.self(X)[0]))
    return layer.output.LayerNorm(A + layer.output.dense(F.gelu(layer.intermediate.dense(A))))


def add_norm(x, sublayer_out, weight, bias, unbiased=False):
    z = x + sublayer_out
    return weight * (z - z.mean(-1, keepdim=True)) / (z.var(-1, unbiased=unbiased, keepdim=True) + 1e-12).sqrt() + bias


def mlm_head_parameters(vocab_size, hidden_size, tied=True):
    return hidden_size * hidden_size + 3 * hidden_size + vocab_size + (0 if tied else vocab_size * hidden_size)


def masked_lm_loss(logits, labels, over_all=False):
    picked = labels != -100
    nll = -torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return (nll * picked).sum() / (picked.numel() if over_all else picked.sum())


def replace_picked(input_ids, picked, u, random_ids, mask_id, random_upper=0.9):
    out = torch.where(picked & (u < 0.8), mask_id, input_ids)
    return torch.where(picked & (u >= 0.8) & (u < random_upper), random_ids, out)


def sentence_order_pairs(document, swap, flip_labels=False):
    return [((b, a, 0) if s else (a, b, 1)) if not flip_labels else ((b, a, 1) if s else (a, b, 0))
            for a, b, s in zip(document, document[1:], swap)]


def whole_word_picks(tokens, picked_words, pieces_are_words=False):
    word, picks = -1, []
    for t in tokens:
        if t in ("[CLS]", "[SEP]", "[PAD]"):
            picks.append(False)
            continue
        word += pieces_are_words or not t.startswith("##")
        picks.append(word in picked_words)
    return picks


def max_pool(last_hidden_state, attention_mask):
    return last_hidden_state.masked_fill(attention_mask[..., None] == 0, float("-inf")).amax(1)


def mean_pool(last_hidden_state, attention_mask):
    m = attention_mask[..., None].float()
    return (last_hidden_state * m).sum(1) / m.sum(1)


def most_similar(query, corpus, k):
    return (F.normalize(corpus, dim=-1) @ F.normalize(query, dim=0)).topk(k).indices


SOLUTIONS_0509 = {
    "05.1": truncate_pair, "05.2": pad_batch, "05.3": join_pieces,
    "06.1": max_pool, "06.2": mean_pool, "06.3": most_similar,
    "07.1": causal_attention, "07.2": masked_softmax, "07.3": window_mask,
    "08.1": pre_ln_block, "08.2": add_norm, "08.3": mlm_head_parameters,
    "09.1": masked_lm_loss, "09.2": replace_picked, "09.3": sentence_order_pairs, "09.4": whole_word_picks,
}

WRONG_0509 = [
    ("05.1", _only_second, "you cut only the second segment"),
    ("05.1", _halves, "the longer one takes all the rest"),
    ("05.1", _odd_to_the_first, "the extra token goes to the segment that was longer"),
    ("05.1", lambda a, b, budget: tuple(x[::-1] for x in truncate_pair(a[::-1], b[::-1], budget)),
     "cut from the end"),
    ("05.2", lambda rows, pad_id: ([r + [pad_id] * (8 - len(r)) for r in rows],
                                   [[1] * len(r) + [0] * (8 - len(r)) for r in rows]), "dynamic padding"),
    ("05.2", lambda rows, pad_id: (pad_batch(rows, pad_id)[0], [[1] * max(map(len, rows))] * len(rows)),
     "1 everywhere"),
    ("05.3", lambda pieces: join_pieces(pieces, keep_marks=True), "kept the '##' marks"),
    ("05.3", lambda pieces: [p.removeprefix("##") for p in pieces], "made every piece a word"),
    ("06.1", lambda h, m: h.amax(1), "the padding took part"),
    ("06.1", lambda h, m: (h * m[..., None]).amax(1), "multiplied by the mask"),
    ("06.1", lambda h, m: h.max(1), "keep the values"),
    ("06.2", lambda h, m: (h * m[..., None]).sum(1) / h.shape[1], "not by T"),
    ("06.2", lambda h, m: h.mean(1), "padding included"),
    ("06.3", lambda q, c, k: (c @ q).topk(k).indices, "dot product"),
    ("06.3", lambda q, c, k: F.cosine_similarity(c, q[None], dim=-1).abs().topk(k).indices, "absolute value"),
    ("06.3", lambda q, c, k: (-F.cosine_similarity(c, q[None], dim=-1)).topk(k).indices, "least similar"),
    ("07.1", lambda Q, K, V: causal_attention(Q, K, V, keep="triu"), "the lower triangle"),
    ("07.1", lambda Q, K, V: causal_attention(Q, K, V, scale=False), "sqrt\\(d\\)"),
    ("07.1", lambda Q, K, V: causal_attention(Q, K, V, after=True), "mask the scores before the softmax"),
    ("07.1", lambda Q, K, V: F.scaled_dot_product_attention(Q, K, V), "without a mask"),
    ("07.2", lambda scores, mask: scores.softmax(-1) * mask[:, None, :], "rows of sentence 2"),
    ("07.2", lambda scores, mask: scores.softmax(-1) * mask[:, :, None], "masked the padded queries"),
    ("07.2", lambda scores, mask: scores.softmax(-1), "still get weight"),
    ("07.3", lambda T, w: window_mask(T, w - 1) if w else window_mask(T, 0), "off by one"),
    ("07.3", lambda T, w: window_mask(T, w) & torch.ones(T, T, dtype=torch.bool).tril(), "looks both ways"),
    ("07.3", lambda T, w: ~window_mask(T, w), "swapped"),
    ("08.1", _post_ln_block, "that is BERT's post-LN block"),
    ("08.1", lambda X, layer: pre_ln_block(X, layer) - X - layer.attention.output.dense(
        layer.attention.self(layer.attention.output.LayerNorm(X))[0]), "second residual is missing"),
    ("08.2", lambda x, s, w, b: add_norm(x, s, w, b, unbiased=True), "unbiased=False"),
    ("08.2", lambda x, s, w, b: F.layer_norm(x, (x.shape[-1],), w, b, eps=1e-12) + s, "normalises the sum"),
    ("08.3", lambda V, H, tied=True: mlm_head_parameters(V, H, False), "V \\* H too many"),
    ("08.3", lambda V, H, tied=True: mlm_head_parameters(V, H, tied) - V, "its own bias"),
    ("08.3", lambda V, H, tied=True: mlm_head_parameters(V, H, tied) - 2 * H, "gamma and a beta"),
    ("09.1", lambda logits, labels: masked_lm_loss(logits, labels, over_all=True), "masked\\s+positions only"),
    ("09.2", lambda ids, picked, u, r, m: replace_picked(ids, picked, u, r, m, random_upper=1.0), "keeps the token"),
    ("09.2", lambda ids, picked, u, r, m: torch.where(u < 0.8, m, ids), "only where `picked`"),
    ("09.2", lambda ids, picked, u, r, m: ids.copy_(replace_picked(ids, picked, u, r, m)), "in place"),
    ("09.3", lambda doc, swap: sentence_order_pairs(doc, swap, flip_labels=True), "wrong way round"),
    ("09.3", lambda doc, swap: [(a, b, 1) for a, b in zip(doc[::2], doc[1::2])], "disjoint"),
    ("09.3", lambda doc, swap: sentence_order_pairs(doc, [False] * len(swap)), "no pair was swapped"),
    ("09.4", lambda tokens, words: whole_word_picks(tokens, words, pieces_are_words=True), "counted every piece"),
    ("09.4", lambda tokens, words: [True] + whole_word_picks(tokens, words)[1:], "special token"),
]


@pytest.mark.parametrize("exercise_id", sorted(SOLUTIONS_0509))
def test_right_answers_pass_0509(exercise_id, capsys):
    check.exercise(exercise_id, SOLUTIONS_0509[exercise_id])
    assert f"✓ Exercise {exercise_id}" in capsys.readouterr().out


def test_every_part_two_exercise_has_a_solution_here():
    done = {k[:2] for k in SOLUTIONS_0509}
    registered = {k for k in check._registry() if k[:2] in done}
    assert registered == set(SOLUTIONS_0509)
    assert all(sum(k.startswith(n) for k in SOLUTIONS_0509) >= 2 for n in done)


@pytest.mark.parametrize("exercise_id", sorted(SOLUTIONS_0509))
def test_a_stub_gets_a_friendly_message_0509(exercise_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="is not written yet: replace `raise NotImplementedError`"):
        check.exercise(exercise_id, stub)


@pytest.mark.parametrize("exercise_id,answer,message", WRONG_0509)
def test_wrong_answers_fail_with_a_useful_message_0509(exercise_id, answer, message):
    with pytest.raises(CheckFailed, match=message) as err:
        check.exercise(exercise_id, answer)
    assert err.value.exercise_id == exercise_id
