"""bertlab.autograd: every value and gradient against torch.autograd."""

import math

import matplotlib
import pytest
import torch

from bertlab.autograd import MLP, Value, draw_graph, mse, topological_order

matplotlib.use("Agg")

UNARY = {
    "exp": (lambda v: v.exp(), torch.exp),
    "log": (lambda v: v.log(), torch.log),
    "tanh": (lambda v: v.tanh(), torch.tanh),
    "relu": (lambda v: v.relu(), torch.relu),
    "sigmoid": (lambda v: v.sigmoid(), torch.sigmoid),
    "pow3": (lambda v: v**3, lambda t: t**3),
    "pow-0.5": (lambda v: v**-0.5, lambda t: t**-0.5),
    "neg": (lambda v: -v, lambda t: -t),
}


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("x", [0.7, 2.5, -1.3])
def test_unary_ops_match_torch(name, x):
    ours_fn, torch_fn = UNARY[name]
    if name in ("log", "pow-0.5") and x <= 0:
        x = -x
    a = Value(x)
    out = ours_fn(a)
    out.backward()
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ref = torch_fn(t)
    ref.backward()
    assert out.data == pytest.approx(ref.item(), abs=1e-12)
    assert a.grad == pytest.approx(t.grad.item(), abs=1e-12)


def test_binary_ops_and_reuse_match_torch():
    a, b = Value(-4.0), Value(2.0)
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f + (a / b).sigmoid() - (2 - a).tanh() + (b.exp() * 0.1).log()
    g.backward()

    ta = torch.tensor(-4.0, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    tc = ta + tb
    td = ta * tb + tb**3
    tc = tc + tc + 1
    tc = tc + 1 + tc + (-ta)
    td = td + td * 2 + (tb + ta).relu()
    td = td + 3 * td + (tb - ta).relu()
    te = tc - td
    tf = te**2
    tg = tf / 2.0
    tg = tg + 10.0 / tf + (ta / tb).sigmoid() - (2 - ta).tanh() + (tb.exp() * 0.1).log()
    tg.backward()

    assert g.data == pytest.approx(tg.item(), rel=1e-12)
    assert a.grad == pytest.approx(ta.grad.item(), rel=1e-12)
    assert b.grad == pytest.approx(tb.grad.item(), rel=1e-12)


def test_sigmoid_is_stable_for_large_inputs():
    assert Value(-800.0).sigmoid().data == 0.0
    assert Value(800.0).sigmoid().data == 1.0


def test_topological_order_puts_parents_first_and_survives_deep_graphs():
    x = Value(0.5)
    y = x
    for _ in range(5000):  # deeper than Python's default recursion limit
        y = y * 1.0
    order = topological_order(y)
    assert order[-1] is y and len(order) == 1 + 2 * 5000  # x, the products, the 1.0s
    position = {id(node): i for i, node in enumerate(order)}
    assert all(position[id(p)] < position[id(n)] for n in order for p in n.parents)
    y.backward()
    assert x.grad == 1.0


def test_leaf_gradients_accumulate_like_torch():
    x = Value(3.0)
    (x * x).backward()
    (x * x).backward()
    assert x.grad == 12.0  # 2 * (2x); torch accumulates the same way


def test_mlp_forward_and_gradients_match_torch():
    net = MLP(3, [4, 4, 1], seed=1)
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    loss = mse([net(x)[0] for x in xs], ys)
    net.zero_grad()
    loss.backward()

    # The same network in torch, weights copied from ours.
    weights, biases = [], []
    for layer in net.layers:
        weights.append(torch.tensor([[w.data for w in n.w] for n in layer.neurons],
                                    dtype=torch.float64, requires_grad=True))
        biases.append(torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64,
                                   requires_grad=True))
    h = torch.tensor(xs, dtype=torch.float64)
    for i, (W, b) in enumerate(zip(weights, biases)):
        h = h @ W.T + b
        if i < len(weights) - 1:
            h = torch.tanh(h)
    ref = ((h[:, 0] - torch.tensor(ys, dtype=torch.float64)) ** 2).mean()
    ref.backward()

    assert loss.data == pytest.approx(ref.item(), rel=1e-12)
    for layer, W, b in zip(net.layers, weights, biases):
        ours_w = torch.tensor([[w.grad for w in n.w] for n in layer.neurons], dtype=torch.float64)
        ours_b = torch.tensor([n.b.grad for n in layer.neurons], dtype=torch.float64)
        torch.testing.assert_close(ours_w, W.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours_b, b.grad, rtol=1e-10, atol=1e-12)
    assert len(net.parameters()) == 3 * 4 + 4 + 4 * 4 + 4 + 4 + 1


def test_mlp_learns_a_tiny_problem():
    net = MLP(2, [8, 1], seed=0)
    xs = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    ys = [-1.0, 1.0, 1.0, -1.0]  # XOR
    for _ in range(300):
        loss = mse([net(x)[0] for x in xs], ys)
        net.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.data -= 0.1 * p.grad
    assert loss.data < 0.05


def test_pow_rejects_a_value_exponent():
    with pytest.raises(TypeError, match="plain number"):
        Value(2.0) ** Value(3.0)


def test_draw_graph_uses_matplotlib_only():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = (a * b + a).tanh()
    out.label = "out"
    out.backward()
    fig = draw_graph(out)
    texts = [t.get_text() for t in fig.axes[0].texts if t.get_text()]  # arrows have none
    assert len(texts) == len(topological_order(out))
    assert any(t.startswith("out [tanh]") for t in texts)
    assert any(f"grad {a.grad:.4g}" in t for t in texts)
    assert math.isclose(a.grad, (1 - math.tanh(-4.0) ** 2) * (b.data + 1))
    import matplotlib.pyplot as plt

    plt.close(fig)
