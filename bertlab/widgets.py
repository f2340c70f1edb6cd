"""Interactive explorers for the notebooks, built with ipywidgets and plain matplotlib.

Introduced in notebook 03: `optimizer_explorer()` lets a learner pick an optimizer, a
learning rate, a momentum and a number of steps, and redraws the optimizer's path on a 2-D
loss surface. The figure is a plain matplotlib `Figure`, rendered to PNG and shown in an
`ipywidgets.Image`, so it works offline and needs neither ipympl nor a particular backend
(an `Output` widget that re-displays the figure works in JupyterLab too, but can hang
headless executors such as nbclient, which `bertlab refresh` uses). The callbacks are
ordinary methods (`update`, `redraw`), so tests call them without a kernel and read the
line data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bertlab import plots
from bertlab.optim import OPTIMIZERS


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
