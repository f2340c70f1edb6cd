"""A fill-mask playground: type a sentence with [MASK], see the model's top guesses.

Introduced in notebook 09 (pretraining). `FillMaskPlayground` puts an ipywidgets text box
over a horizontal bar chart of the top-k tokens and their probabilities, drawn with plain
matplotlib inside an `ipywidgets.Output`, so it works offline and needs no ipympl. The
callback is an ordinary method (`update`), so tests call it without a kernel and read the
returned guesses or the bars.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from bertlab import plots
from bertlab.pretraining import fill_mask
from bertlab.tokenization import WordPieceTokenizer


def guesses_table(guesses: list[list[tuple[str, float]]]) -> str:
    """The guesses as text, one line per [MASK]: "[MASK] 1: pasta 0.41, soup 0.30, ..."."""
    return "\n".join(
        f"[MASK] {i + 1}: " + ", ".join(f"{token} {p:.2f}" for token, p in row)
        for i, row in enumerate(guesses)
    )


class FillMaskPlayground:
    """A text box and a bar chart of `model`'s top-k guesses for each [MASK]; show `.widget`."""

    def __init__(self, model: nn.Module, tokenizer: WordPieceTokenizer,
                 text: str = "the chef cooked the [MASK] in the kitchen.", top_k: int = 5):
        import ipywidgets as w
        from matplotlib.figure import Figure

        self.model, self.tokenizer, self.top_k = model, tokenizer, top_k
        self.text = w.Text(value=text, description="sentence", continuous_update=False,
                           layout=w.Layout(width="600px"))
        self.message = w.Label()
        # A bare Figure (not pyplot): the inline backend shows it only inside the Output.
        self.figure = Figure(figsize=(6, 2.8))
        self.output = w.Output()
        self.text.observe(self._on_change, names="value")
        self.widget = w.VBox([self.text, self.message, self.output])
        self.guesses: list[list[tuple[str, float]]] = []
        self.update(text)

    def _on_change(self, change: dict[str, Any]) -> None:
        self.update(change["new"])

    def update(self, text: str) -> list[list[tuple[str, float]]]:
        """Predict for `text` (also set in the box), redraw, and return the guesses.

        A text without [MASK] shows a hint instead of raising: learners type freely.
        """
        if self.text.value != text:
            self.text.value = text  # fires _on_change, which calls update again
            return self.guesses
        if "[MASK]" not in text:
            self.guesses = []
            self.message.value = 'Put [MASK] where a word should go, e.g. "the [MASK] baked the bread."'
        else:
            self.guesses = fill_mask(self.model, self.tokenizer, text, self.top_k)
            self.message.value = guesses_table(self.guesses)
        self._draw()
        self.output.clear_output(wait=True)
        with self.output:
            plots.show(self.figure)
        return self.guesses

    def _draw(self) -> None:
        self.figure.clf()
        if not self.guesses:
            return
        axes = self.figure.subplots(1, len(self.guesses), squeeze=False)[0]
        for i, (ax, row) in enumerate(zip(axes, self.guesses)):
            tokens = [token for token, _ in row][::-1]  # best at the top
            probs = [p for _, p in row][::-1]
            ax.barh(tokens, probs, color=plots.PALETTE[i % len(plots.PALETTE)])
            ax.set_xlim(0, 1)
            ax.set_xlabel("probability")
            ax.set_title(f"[MASK] {i + 1}" if len(self.guesses) > 1 else "top guesses")
        self.figure.tight_layout()

    def bars(self) -> list[list[tuple[str, float]]]:
        """What the chart shows, read back from its bars (for tests), best first."""
        shown = []
        for ax in self.figure.axes:
            labels = [t.get_text() for t in ax.get_yticklabels()]
            widths = [patch.get_width() for patch in ax.patches]
            shown.append(list(zip(labels, widths))[::-1])
        return shown


def fill_mask_playground(model: nn.Module, tokenizer: WordPieceTokenizer,
                         text: str = "the chef cooked the [MASK] in the kitchen.",
                         top_k: int = 5) -> FillMaskPlayground:
    """Build the notebook 09 playground; display ``playground.widget`` in a notebook."""
    return FillMaskPlayground(model, tokenizer, text, top_k)
