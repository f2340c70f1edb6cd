"""bertlab.plots and bertlab.explorers (optimizer explorer): figures hold the data they should, callbacks redraw."""

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import is_color_like, to_hex

from bertlab import explorers, plots

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_palette_is_okabe_ito_and_valid():
    assert len(plots.PALETTE) == len(set(plots.PALETTE)) == 8
    assert all(is_color_like(c) for c in plots.PALETTE)
    assert plots.PALETTE[:3] == ["#0072B2", "#E69F00", "#009E73"]


def test_activation_curves_plot_values_and_derivatives():
    fig = plots.activation_curves({"sigmoid": torch.sigmoid, "tanh": torch.tanh})
    left, right = fig.axes
    z, s = left.lines[0].get_xydata().T
    _, ds = right.lines[0].get_xydata().T
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-z)), atol=1e-6)
    np.testing.assert_allclose(ds, s * (1 - s), atol=1e-6)
    assert to_hex(right.lines[1].get_color()) == plots.PALETTE[1].lower()
    assert left.get_xlabel() and right.get_ylabel() == "f'(z)"


def test_loss_curves_one_line_per_split():
    fig = plots.loss_curves({"train": [1.0, 0.5, 0.2], "validation": [1.1, 0.7, 0.8]})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["train", "validation"]
    np.testing.assert_array_equal(ax.lines[1].get_xydata(), [[1, 1.1], [2, 0.7], [3, 0.8]])
    assert ax.get_xlabel() == "epoch" and ax.get_title()


def test_optimizer_paths_draws_each_path_and_the_minimum():
    paths = {"sgd": explorers.trajectory("sgd", 0.1, 0.0, 20), "adam": explorers.trajectory("adam", 0.3, 0.9, 20)}
    surf = explorers.SURFACES["ravine"]
    fig = plots.optimizer_paths(surf.fn, paths, xlim=surf.xlim, ylim=surf.ylim)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["sgd", "adam", "start", "minimum"]
    np.testing.assert_allclose(ax.lines[0].get_xydata(), paths["sgd"])


def test_confusion_matrix_writes_counts():
    fig = plots.confusion_matrix(np.array([[5, 1], [2, 7]]), ["negative", "positive"])
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "5", "7"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["negative", "positive"]


def test_trajectory_follows_bertlab_optim_and_stops_when_diverging():
    path = explorers.trajectory("sgd", 0.1, 0.0, 10)
    assert path.shape == (11, 2)
    # SGD on 0.05 x^2 + y^2: x shrinks by (1 - 0.1 * 0.1) per step, y by (1 - 0.1 * 2).
    np.testing.assert_allclose(path[-1], [-4.5 * 0.99**10, 2.0 * 0.8**10])
    diverged = explorers.trajectory("sgd", 3.0, 0.0, 100)
    assert len(diverged) < 101 and np.isfinite(diverged).all()


def test_explorer_update_changes_the_line():
    explorer = explorers.optimizer_explorer()
    before = explorer.line.get_xydata().copy()
    assert before.shape == (51, 2)
    path = explorer.update(optimizer="adam", lr=0.3, momentum=0.9, steps=80)
    after = explorer.line.get_xydata()
    assert after.shape == (81, 2) and not np.allclose(before[-1], after[-1])
    np.testing.assert_allclose(after, path)
    np.testing.assert_allclose(path, explorers.trajectory("adam", 0.3, 0.9, 80))
    assert explorer.ax.get_title().startswith("adam, lr=0.3")


def test_explorer_redraws_when_a_control_changes():
    explorer = explorers.optimizer_explorer(steps=10)
    explorer.controls["momentum"].value = 0.9
    np.testing.assert_allclose(explorer.line.get_xydata(), explorers.trajectory("sgd", 0.1, 0.9, 10))
    explorer.controls["lr"].value = 3.0
    assert "diverged" in explorer.ax.get_title()


def test_explorer_rejects_unknown_settings():
    with pytest.raises(ValueError, match="unknown setting"):
        explorers.optimizer_explorer().update(learning_rate=0.1)


def test_explorer_renders_png_without_a_backend():
    explorer = explorers.optimizer_explorer(steps=5)
    assert explorer._repr_png_().startswith(b"\x89PNG\r\n\x1a\n")


def test_explorer_image_widget_shows_the_current_figure():
    explorer = explorers.optimizer_explorer(steps=5)
    first = explorer.image.value
    explorer.update(lr=0.05)
    assert bytes(explorer.image.value).startswith(b"\x89PNG") and explorer.image.value != first
    assert explorer.image in explorer.widget.children
