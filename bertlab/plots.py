"""The plots the notebooks share, in one colour-blind-safe palette.

Introduced in notebooks 01-04: activation curves (01), loss curves for train and
validation (03, 04 and later), optimizer paths on a 2-D loss surface (03), and a confusion
matrix (04). Each function draws on a new figure (or on `ax` when given) and returns the
matplotlib Figure, so a notebook shows it and a test reads its line data.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

# Okabe & Ito's palette (https://jfly.uni-koeln.de/color/), readable with every common
# colour-vision deficiency: blue, orange, bluish green, vermillion, reddish purple,
# sky blue, yellow, black.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def png_bytes(figure: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure rendered to PNG bytes (no backend or pyplot set-up needed).

    The one place figures become images: widgets, explorers and HTML reports all use it.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def show(figure: Any, dpi: int = 80) -> None:
    """Display a bare matplotlib Figure in Jupyter as a PNG (works before pyplot is used, and
    inside an ipywidgets Output, where displaying the Figure itself can hang nbclient)."""
    from IPython.display import Image, display  # IPython only where a notebook displays

    display(Image(data=png_bytes(figure, dpi=dpi), format="png"))


def _axes(ax: Any = None, figsize: tuple[float, float] = (6, 4)) -> Any:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def activation_curves(functions: Mapping[str, Callable[[torch.Tensor], torch.Tensor]],
                      lo: float = -5.0, hi: float = 5.0) -> Any:
    """Two panels: each activation f(z) and its derivative f'(z) (by autograd) on [lo, hi]."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    z = torch.linspace(lo, hi, 401, requires_grad=True)
    for i, (name, f) in enumerate(functions.items()):
        y = f(z)
        (dy,) = torch.autograd.grad(y.sum(), z)  # elementwise f, so d sum / dz_i = f'(z_i)
        color = PALETTE[i % len(PALETTE)]
        left.plot(z.detach(), y.detach(), color=color, label=name, linewidth=2)
        right.plot(z.detach(), dy, color=color, label=name, linewidth=2)
    for ax, title, ylabel in ((left, "Activations", "f(z)"), (right, "Their derivatives", "f'(z)")):
        ax.axhline(0, color="0.8", linewidth=0.8)
        ax.axvline(0, color="0.8", linewidth=0.8)
        ax.set_xlabel("pre-activation z")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    return fig


def loss_curves(curves: Mapping[str, Sequence[float]], ax: Any = None, xlabel: str = "epoch",
                ylabel: str = "loss", title: str = "Training and validation loss",
                log_y: bool = False) -> Any:
    """One line per named curve, e.g. ``{"train": [...], "validation": [...]}``.

    The x axis counts from 1 (after the first epoch or step)."""
    ax = _axes(ax)
    for i, (name, ys) in enumerate(curves.items()):
        ys = np.asarray(ys, dtype=float)
        ax.plot(np.arange(1, len(ys) + 1), ys, color=PALETTE[i % len(PALETTE)], label=name,
                linewidth=2, marker="o" if len(ys) <= 30 else None, markersize=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax.figure


def loss_surface(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], ax: Any = None,
                 xlim: tuple[float, float] = (-5, 5), ylim: tuple[float, float] = (-3, 3),
                 levels: int = 25) -> Any:
    """Contours of a 2-D loss f(x, y) (log-spaced levels, so valleys show). Returns the axes."""
    ax = _axes(ax, figsize=(7, 5))
    xs, ys = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    zs = fn(xs, ys)
    lo = max(float(zs.min()), 1e-3)
    ax.contour(xs, ys, zs, levels=np.geomspace(lo, float(zs.max()), levels), colors="0.75",
               linewidths=0.8)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    return ax


def optimizer_paths(fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    paths: Mapping[str, np.ndarray], ax: Any = None,
                    xlim: tuple[float, float] = (-5, 5), ylim: tuple[float, float] = (-3, 3),
                    minimum: tuple[float, float] | None = (0.0, 0.0),
                    title: str = "Optimizer paths on a 2-D loss surface") -> Any:
    """Each path (an array of shape (steps + 1, 2)) drawn over the contours of `fn`."""
    ax = loss_surface(fn, ax, xlim, ylim)
    for i, (name, path) in enumerate(paths.items()):
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], color=PALETTE[i % len(PALETTE)], marker="o",
                markersize=2.5, linewidth=1.5, label=name)
    if paths:
        start = np.asarray(next(iter(paths.values())))[0]
        ax.plot(*start, marker="s", color="black", linestyle="none", label="start")
    if minimum is not None:
        ax.plot(*minimum, marker="*", markersize=14, color=PALETTE[6], markeredgecolor="black",
                linestyle="none", label="minimum")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    return ax.figure


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str], ax: Any = None,
                     title: str = "Confusion matrix") -> Any:
    """A confusion matrix (rows: true label, columns: predicted) with counts in the cells."""
    ax = _axes(ax, figsize=(4.5, 4))
    matrix = np.asarray(matrix)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        dark = count > matrix.max() / 2
        ax.text(j, i, str(count), ha="center", va="center", fontsize=12,
                color="white" if dark else "black")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    return ax.figure
