"""A scalar autograd engine: `Value`, a tiny `MLP` built on it, and a graph drawing.

Derived in notebook 02 (backpropagation). Each `Value` holds a number (`data`), the
derivative of the final output with respect to it (`grad`), the values it was made from
(`parents`) and a `_backward` closure that pushes its own gradient to its parents with the
chain rule. `backward()` visits the graph in reverse topological order, so every node's
gradient is complete before it is passed on. The tests compare every value and every
gradient with `torch.autograd`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from typing import Any

from bertlab.plots import PALETTE


class Value:
    """One scalar in a computation graph, with its gradient."""

    def __init__(self, data: float, parents: tuple[Value, ...] = (), op: str = "", label: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self.parents = parents
        self.op = op  # the operation that made this value ("" for a leaf)
        self.label = label
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        name = f"{self.label}=" if self.label else ""
        return f"Value({name}{self.data:.4g}, grad={self.grad:.4g})"

    # Each operation: the forward value, then the local derivative times the output's grad.
    def __add__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:  # d(a+b)/da = 1, d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward() -> None:  # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: float) -> Value:
        if isinstance(exponent, Value):
            raise TypeError("Value ** Value is not supported; use a plain number as the exponent.")
        out = Value(self.data**exponent, (self,), f"**{exponent:g}")

        def _backward() -> None:  # d(a^n)/da = n a^(n-1)
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:  # d(e^a)/da = e^a
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        out = Value(math.log(self.data), (self,), "log")

        def _backward() -> None:  # d(ln a)/da = 1/a
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward() -> None:  # d tanh(a)/da = 1 - tanh(a)^2
            self.grad += (1.0 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward() -> None:  # 1 where a > 0, else 0 (torch also uses 0 at a = 0)
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        if self.data >= 0:  # two forms so that exp never overflows
            s = 1.0 / (1.0 + math.exp(-self.data))
        else:
            s = math.exp(self.data) / (1.0 + math.exp(self.data))
        out = Value(s, (self,), "sigmoid")

        def _backward() -> None:  # d sigma(a)/da = sigma(a) (1 - sigma(a))
            self.grad += out.data * (1.0 - out.data) * out.grad

        out._backward = _backward
        return out

    # Everything else is built from the operations above.
    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other: Value | float) -> Value:
        return self + (-other)

    def __truediv__(self, other: Value | float) -> Value:
        return self * other**-1.0

    def __radd__(self, other: float) -> Value:
        return self + other

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __rsub__(self, other: float) -> Value:
        return Value(other) - self

    def __rtruediv__(self, other: float) -> Value:
        return Value(other) * self**-1.0

    def backward(self) -> None:
        """Add d self / d node to the `grad` of every value this one depends on.

        Like torch, leaves (inputs, parameters) accumulate: call `zero_grad` between steps.
        """
        order = topological_order(self)
        for node in order:
            if node.parents:  # intermediate results start from zero on every call
                node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


def topological_order(root: Value) -> list[Value]:
    """Every value `root` depends on, each after all of its parents (root last)."""
    order: list[Value] = []
    seen: set[int] = set()
    stack: list[tuple[Value, bool]] = [(root, False)]
    while stack:  # an explicit stack: deep graphs do not hit Python's recursion limit
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.parents if id(p) not in seen)
    return order


# ---------------------------------------------------------------------------------------
# A small multilayer perceptron on Values (notebook 02)


class Neuron:
    """z = w . x + b, then tanh (or nothing, for an output neuron)."""

    def __init__(self, n_in: int, nonlinear: bool = True, rng: random.Random | None = None):
        rng = rng or random.Random(0)
        self.w = [Value(rng.uniform(-1, 1), label="w") for _ in range(n_in)]
        self.b = Value(0.0, label="b")
        self.nonlinear = nonlinear

    def __call__(self, x: list[Value | float]) -> Value:
        z = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return z.tanh() if self.nonlinear else z

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]


class Layer:
    """`n_out` neurons that all read the same inputs."""

    def __init__(self, n_in: int, n_out: int, nonlinear: bool = True, rng: random.Random | None = None):
        self.neurons = [Neuron(n_in, nonlinear, rng) for _ in range(n_out)]

    def __call__(self, x: list[Value | float]) -> list[Value]:
        return [n(x) for n in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    """Layers of tanh neurons with a linear last layer: ``MLP(3, [4, 4, 1])``."""

    def __init__(self, n_in: int, sizes: list[int], seed: int = 0):
        rng = random.Random(seed)
        dims = [n_in, *sizes]
        self.layers = [
            Layer(dims[i], dims[i + 1], nonlinear=i < len(sizes) - 1, rng=rng)
            for i in range(len(sizes))
        ]

    def __call__(self, x: list[Value | float]) -> list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


def mse(predictions: Iterable[Value], targets: Iterable[float]) -> Value:
    """Mean squared error of scalar predictions."""
    pairs = list(zip(predictions, targets))
    return sum(((p - t) ** 2 for p, t in pairs), Value(0.0)) / len(pairs)


# ---------------------------------------------------------------------------------------
# Drawing a graph with matplotlib (no graphviz binary needed)


def _layout(root: Value) -> dict[int, tuple[float, float]]:
    """x = depth from the leaves, y = spread within a column."""
    order = topological_order(root)
    depth: dict[int, int] = {}
    for node in order:
        depth[id(node)] = 1 + max((depth[id(p)] for p in node.parents), default=-1)
    columns: dict[int, list[Value]] = {}
    for node in order:
        columns.setdefault(depth[id(node)], []).append(node)
    pos = {}
    for d, nodes in columns.items():
        for i, node in enumerate(nodes):
            pos[id(node)] = (2.0 * d, (len(nodes) - 1) / 2 - i)
    return pos


def draw_graph(root: Value, ax: Any = None, show_grad: bool = True) -> Any:
    """Draw the graph that made `root`: one box per value (label, data, grad), arrows
    from inputs to outputs with the operation on the box. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt  # pyplot picks a backend: only when a learner draws

    order = topological_order(root)
    pos = _layout(root)
    if ax is None:
        width = max(x for x, _ in pos.values()) / 2 + 1
        height = max(len([n for n in order if pos[id(n)][0] == x]) for x, _ in pos.values())
        _, ax = plt.subplots(figsize=(min(2.4 * width + 1, 16), min(1.1 * height + 1.2, 10)))
    for node in order:
        x, y = pos[id(node)]
        for parent in node.parents:
            px, py = pos[id(parent)]
            ax.annotate("", xy=(x - 0.55, y), xytext=(px + 0.55, py),
                        arrowprops={"arrowstyle": "->", "color": "0.45"})
    for node in order:
        x, y = pos[id(node)]
        head = f"{node.label} " if node.label else ""
        head += f"[{node.op}]" if node.op else ""
        text = f"{head}\n{node.data:.4g}" if head else f"{node.data:.4g}"
        if show_grad:
            text += f"\ngrad {node.grad:.4g}"
        color = PALETTE[5] if not node.parents else PALETTE[1]
        ax.text(x, y, text, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": color, "alpha": 0.35, "edgecolor": "0.3"})
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    ax.set_title("Computation graph: inputs (blue) on the left, output on the right")
    return ax.figure
