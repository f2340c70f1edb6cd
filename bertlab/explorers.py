"""The course's two interactive explorers, built with ipywidgets and plain matplotlib.

- Notebook 03 (losses and optimizers): `optimizer_explorer()` lets a learner pick an
  optimizer, a learning rate, a momentum and a number of steps, and redraws the optimizer's
  path on a 2-D loss surface (`trajectory` computes the path).
- Notebook 07 (attention): `attention_explorer()` is a text box (the sentence), a layer
  slider and a head slider above a heatmap of which token attends to which;
  `attention_figure` draws one head. The probabilities come from
  `bertlab.saliency.attention_maps`, which notebook 12 uses too.

Each figure is a bare matplotlib `Figure` rendered to PNG (`bertlab.plots`), so both work
offline and need neither ipympl nor a particular backend. (An `Output` widget that
re-displays a pyplot figure works in JupyterLab too, but can hang headless executors such as
nbclient, which `bertlab refresh` uses.) The callbacks are ordinary methods (`update`,
`redraw`, `set_sentence`), so tests drive them without a kernel and read the figures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bertlab import hub, plots
from bertlab.model import BertModel
from bertlab.optim import OPTIMIZERS
from bertlab.saliency import attention_maps

# ---------------------------------------------------------------------------------------
# Notebook 03: an optimizer's path on a 2-D loss surface


@dataclass(frozen=True)
class Surface:
    """A 2-D loss f(x, y) (works on NumPy arrays and on torch tensors) and how to view it."""

    fn: Callable[[Any, Any], Any]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    start: tuple[float, float]
    minimum: tuple[float, float]


SURFACES = {
    # A long, narrow valley: 20x steeper across (y) than along (x), as real losses often are.
    "ravine": Surface(lambda x, y: 0.05 * x**2 + y**2, (-5, 5), (-3, 3), (-4.5, 2.0), (0.0, 0.0)),
    # Rosenbrock's banana-shaped valley (minimum at (1, 1)), scaled down 20x.
    "rosenbrock": Surface(lambda x, y: ((1 - x) ** 2 + 100 * (y - x**2) ** 2) / 20,
                          (-2, 2), (-1, 3), (-1.5, 2.5), (1.0, 1.0)),
}


def trajectory(optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.0, steps: int = 50,
               surface: str = "ravine") -> np.ndarray:
    """The points (steps + 1, 2) that `bertlab.optim`'s `optimizer` visits from the surface's
    start. `momentum` is SGD's and RMSprop's momentum, and Adam's / AdamW's beta1. A path
    that runs off to infinity stops where it leaves a box 100x the plotted one."""
    surf = SURFACES[surface]
    theta = torch.tensor(surf.start, dtype=torch.float64, requires_grad=True)
    cls = OPTIMIZERS[optimizer]
    if optimizer in ("adam", "adamw"):
        opt = cls([theta], lr=lr, betas=(momentum, 0.999))
    else:
        opt = cls([theta], lr=lr, momentum=momentum)
    limit = 100 * max(map(abs, (*surf.xlim, *surf.ylim)))
    points = [theta.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        surf.fn(theta[0], theta[1]).backward()
        opt.step()
        if not torch.isfinite(theta).all() or theta.abs().max() > limit:
            break
        points.append(theta.detach().clone())
    return torch.stack(points).numpy()


class OptimizerExplorer:
    """An optimizer's path on a 2-D surface, with controls; show `explorer.widget`."""

    def __init__(self, optimizer: str = "sgd", lr: float = 0.1, momentum: float = 0.0,
                 steps: int = 50, surface: str = "ravine"):
        import ipywidgets as w
        from matplotlib.figure import Figure

        self.surface = SURFACES[surface]
        self.surface_name = surface
        self.controls = {
            "optimizer": w.Dropdown(options=list(OPTIMIZERS), value=optimizer, description="optimizer"),
            "lr": w.FloatLogSlider(value=lr, base=10, min=-3, max=0.5, step=0.05, description="lr"),
            "momentum": w.FloatSlider(value=momentum, min=0.0, max=0.99, step=0.01, description="momentum"),
            "steps": w.IntSlider(value=steps, min=1, max=300, description="steps"),
        }
        # A bare Figure (not pyplot): no backend shows it by itself; `redraw` renders it to
        # PNG and puts the bytes in the Image widget.
        self.figure = Figure(figsize=(7, 4.5))
        ax = self.figure.subplots()
        s = self.surface
        plots.optimizer_paths(s.fn, {}, ax=ax, xlim=s.xlim, ylim=s.ylim, minimum=s.minimum,
                              title="")
        (self.line,) = ax.plot([], [], color=plots.PALETTE[3], marker="o", markersize=2.5,
                               linewidth=1.5)
        ax.plot(*s.start, marker="s", color="black")
        self.ax = ax
        self.image = w.Image(format="png")
        self._quiet = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox(list(self.controls.values())[:2]),
                              w.HBox(list(self.controls.values())[2:]), self.image])
        self.redraw()

    def _on_change(self, _change: Any) -> None:
        if not self._quiet:
            self.redraw()

    def values(self) -> dict[str, Any]:
        """The controls' current settings."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self, **settings: Any) -> np.ndarray:
        """Set some controls (e.g. ``update(optimizer="adam", lr=0.3)``), redraw once, and
        return the new path."""
        unknown = set(settings) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; use {list(self.controls)}")
        self._quiet = True  # one redraw for all the settings, not one per control
        try:
            for name, value in settings.items():
                self.controls[name].value = value
        finally:
            self._quiet = False
        return self.redraw()

    def redraw(self) -> np.ndarray:
        """Recompute the path from the controls, move the line, show the figure again."""
        v = self.values()
        path = trajectory(v["optimizer"], v["lr"], v["momentum"], v["steps"], self.surface_name)
        self.line.set_data(path[:, 0], path[:, 1])
        x, y = path[-1]
        loss = float(self.surface.fn(x, y))
        diverged = len(path) < v["steps"] + 1
        self.ax.set_title(f"{v['optimizer']}, lr={v['lr']:.3g}, momentum={v['momentum']:.2f}: "
                          + ("diverged" if diverged else f"loss {loss:.3g} after {v['steps']} steps"))
        self.image.value = self.png()
        return path

    def png(self) -> bytes:
        """The figure as PNG bytes (rendered here, so no matplotlib backend setup is needed)."""
        return plots.png_bytes(self.figure)

    def _repr_png_(self) -> bytes:  # Jupyter shows `explorer` as its current figure
        return self.png()


def optimizer_explorer(**settings: Any) -> OptimizerExplorer:
    """Build the notebook 03 explorer; display ``explorer.widget`` in a notebook."""
    return OptimizerExplorer(**settings)


# ---------------------------------------------------------------------------------------
# Notebook 07: which tokens each token attends to, layer by layer, head by head

EXAMPLE = "The animal didn't cross the street because it was too tired."


@functools.lru_cache(maxsize=2)
def _attention_model(model: str) -> tuple[Any, BertModel]:
    """(tokenizer, from-scratch BertModel), loaded once per model name."""
    bert = BertModel.from_pretrained(model)
    return hub.load_tokenizer(model), bert


def attention_figure(tokens: list[str], weights: torch.Tensor, title: str = "", ax: Any = None) -> Any:
    """A heatmap of one head's attention weights (T, T): rows are queries, columns keys.

    Draws on `ax` when given, else on a new bare `Figure` (no pyplot state); returns the Figure.
    """
    from matplotlib.figure import Figure

    if ax is None:
        size = min(9.0, 2.5 + 0.35 * len(tokens))
        ax = Figure(figsize=(size + 1.2, size)).subplots()
    image = ax.imshow(weights.detach().cpu().numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(tokens)), tokens, rotation=90)
    ax.set_yticks(range(len(tokens)), tokens)
    ax.set_xlabel("key: the token attended to")
    ax.set_ylabel("query: the token attending")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    ax.figure.tight_layout()
    return ax.figure


class AttentionExplorer:
    """Sentence, layer and head controls over an attention heatmap; show `explorer.widget`."""

    def __init__(self, sentence: str = EXAMPLE, model: str = "minilm", layer: int = 0, head: int = 0):
        import ipywidgets as w

        self.model = model
        config = _attention_model(model)[1].config
        self.controls = {
            "sentence": w.Text(value=sentence, description="sentence", continuous_update=False,
                               layout=w.Layout(width="95%")),
            "layer": w.IntSlider(value=layer, min=0, max=config.num_hidden_layers - 1, description="layer"),
            "head": w.IntSlider(value=head, min=0, max=config.num_attention_heads - 1, description="head"),
        }
        self.output = w.Output()
        self.figure: Any = None
        self.set_sentence(sentence, redraw=False)
        self.controls["sentence"].observe(lambda change: self.set_sentence(change["new"]), names="value")
        self.controls["layer"].observe(lambda _: self.redraw(), names="value")
        self.controls["head"].observe(lambda _: self.redraw(), names="value")
        self.widget = w.VBox([self.controls["sentence"],
                              w.HBox([self.controls["layer"], self.controls["head"]]), self.output])
        self.redraw()

    def set_sentence(self, sentence: str, redraw: bool = True) -> None:
        """Run the model on a new sentence (once), then redraw the chosen layer and head."""
        tokenizer, bert = _attention_model(self.model)
        self.tokens, self.maps = attention_maps(bert, tokenizer, sentence.strip() or EXAMPLE, 64)  # (L, h, T, T)
        if redraw:
            self.redraw()

    def redraw(self) -> Any:
        """Draw the current layer and head in the output area; return the Figure."""
        layer, head = self.controls["layer"].value, self.controls["head"].value
        self.figure = attention_figure(self.tokens, self.maps[layer, head],
                                       f"{self.model}: layer {layer}, head {head}")
        self.output.clear_output(wait=True)
        with self.output:
            plots.show(self.figure)
        return self.figure


def attention_explorer(sentence: str = EXAMPLE, model: str = "minilm") -> AttentionExplorer:
    """Build the notebook 07 explorer; display ``explorer.widget`` in a notebook."""
    return AttentionExplorer(sentence, model)
