"""The attention explorer: which tokens each token attends to, layer by layer, head by head.

Introduced in notebook 07 (attention); notebook 12 reuses `attention_maps` and
`attention_figure`. The explorer is a text box (the sentence), a layer slider and a head
slider above an `ipywidgets.Output` that shows the matplotlib heatmap as a PNG (as the
inline backend would), so it works offline and needs no ipympl. The callbacks are ordinary methods
(`set_sentence`, `redraw`), so tests drive them without a kernel and read the figure.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from bertlab import hub, plots
from bertlab.model import BertModel

EXAMPLE = "The animal didn't cross the street because it was too tired."


@functools.lru_cache(maxsize=2)
def _attention_model(model: str) -> tuple[Any, BertModel]:
    """(tokenizer, BertModel) with eager attention that keeps its probabilities, cached."""
    bert = BertModel.from_pretrained(model, attn_implementation="eager", output_attentions=True)
    return hub.load_tokenizer(model), bert


@torch.no_grad()
def attention_maps(sentence: str, model: str = "minilm") -> tuple[list[str], torch.Tensor]:
    """The tokens of `sentence` and the model's attention probabilities (L, h, T, T).

    Entry [l, i, q, k] is how much token q attends to token k in layer l, head i; each row
    (fixed l, i, q) sums to 1. Computed by the from-scratch `bertlab.model.BertModel`.
    """
    tokenizer, bert = _attention_model(model)
    batch = tokenizer(sentence, truncation=True, max_length=64, return_tensors="pt")
    out = bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    return tokens, torch.stack(out.attentions)[:, 0]  # (L, h, T, T)


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
        self.tokens, self.maps = attention_maps(sentence.strip() or EXAMPLE, self.model)  # (L, h, T, T)
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
