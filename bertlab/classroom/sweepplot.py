"""A sweep's comparison figure: the metric against each swept parameter, over seeds.

Derived for `python -m bertlab sweep` (`bertlab.classroom.sweep` draws it at the end of a
sweep and puts it in the sweep's report): one panel per swept parameter, a line per setting
of the others, the mean over seeds with its standard deviation, and every run as a dot.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from bertlab.classroom import report
from bertlab.plots import PALETTE


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def comparison_figure(rows: list[dict], typed: dict[str, list[Any]], metric: str) -> Any:
    """One panel per swept parameter (seed only when it is the only one): the metric's mean
    over seeds (a line per setting of the other parameters), the spread as error bars
    (standard deviation) and each run as a faint dot."""
    import matplotlib  # plotting only at the end of a sweep, headless

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    swept = [p for p in typed if p != "seed"] or list(typed)
    fig, axes = plt.subplots(1, len(swept), figsize=(5.2 * len(swept), 3.8), squeeze=False)
    done = [r for r in rows if r.get("ok") and metric in r]
    for ax, p in zip(axes[0], swept):
        values = typed[p]
        numeric = all(_is_number(v) for v in values)
        xs = {v: (v if numeric else i) for i, v in enumerate(values)}
        others = [q for q in swept if q != p]
        groups: dict[tuple, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in done:
            key = tuple(r[q] for q in others)
            groups[key][r[p]].append(float(r[metric]))
        if len(groups) > len(PALETTE):  # too many lines: average over the others too
            merged: dict[Any, list[float]] = defaultdict(list)
            for g in groups.values():
                for v, ys in g.items():
                    merged[v] += ys
            groups = {("mean over the other parameters",): merged}
            others = []
        # one line per setting of the others, in the order the grid lists their values
        order_of = {key: tuple(typed[q].index(v) for q, v in zip(others, key)) for key in groups}
        for k, (key, by_value) in enumerate(sorted(groups.items(), key=lambda kv: order_of[kv[0]])):
            color = PALETTE[k % len(PALETTE)]
            order = [v for v in values if v in by_value]
            x = [xs[v] for v in order]
            means = [float(np.mean(by_value[v])) for v in order]
            spread = [float(np.std(by_value[v])) for v in order]
            label = ", ".join(f"{q}={report.fmt(v)}" for q, v in zip(others, key)) if others else (
                key[0] if key and isinstance(key[0], str) else None)
            ax.errorbar(x, means, yerr=spread, color=color, marker="o", capsize=4, label=label)
            for v in order:
                ax.scatter([xs[v]] * len(by_value[v]), by_value[v], color=color, alpha=0.35, s=14)
        if numeric and min(values) > 0 and max(values) / min(values) >= 50:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(values)), [t if len(t) <= 24 else t[:23] + "…" for t in map(report.fmt, values)])
        ax.set_xlabel(p)
        ax.set_ylabel(metric)
        seeds = " (mean ± std over seeds)" if "seed" in typed and p != "seed" else ""
        ax.set_title(f"{metric} vs {p}{seeds}", fontsize=10)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
