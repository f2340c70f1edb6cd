"""A look inside one prediction: attention probabilities and gradient x input saliency.

Derived in notebook 12 (after training). Two views of why a classifier said what it said:

- **attention**: the softmax weights each token gives every other token, per layer and
  head, shape (L, A, T, T). They show where information *can* flow, not how much it
  mattered, so they are a picture, not an explanation;
- **gradient x input**: for the target logit z_c and the input word embeddings
  e_t (T vectors of size H), the score of token t is ``sum_h e_{t,h} * dz_c/de_{t,h}``,
  the first-order (Taylor) estimate of how much z_c would drop if e_t were set to zero.
  The scores over all tokens add up to about ``d z_c(alpha e) / d alpha`` at alpha = 1.

`gradient_x_input` takes a Hugging Face sequence classifier (``.logits`` in its output) and
its tokenizer; `attention_maps` takes that or the from-scratch BERT (notebooks 07 and 08).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bertlab.model import BertConfig
from bertlab.plots import PALETTE


@dataclass
class Attribution:
    """Gradient x input for one text: a score per token for the `target` class."""

    tokens: list[str]
    scores: torch.Tensor  # (T,)
    target: int
    probs: torch.Tensor  # (C,) the model's class probabilities


def _encode(tokenizer: Any, text: str, max_length: int, device: torch.device) -> dict[str, torch.Tensor]:
    enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items()}


def attention_maps(model: Any, tokenizer: Any, text: str,
                   max_length: int = 128) -> tuple[list[str], torch.Tensor]:
    """The tokens of `text` and the attention probabilities of every layer and head (L, A, T, T).

    Entry [l, a, q, k] is how much token q attends to token k in layer l, head a; each row
    sums to 1. `model` is the from-scratch `bertlab.model` BERT (notebooks 07 and 08) or a
    transformers model (notebook 12), with or without a head. Fused attention kernels
    (SDPA) never form the probability matrix, so the model runs with eager attention for
    this call and is switched back afterwards.
    """
    device = next(model.parameters()).device
    enc = _encode(tokenizer, text, max_length, device)
    with torch.no_grad(), _eager_attention(model):
        if isinstance(model.config, BertConfig):
            out = model(enc["input_ids"], enc.get("token_type_ids"), enc["attention_mask"])
        else:
            out = model(**enc, output_attentions=True)
    attn = torch.stack([a[0] for a in out.attentions]).float().cpu()  # (L, A, T, T)
    return tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist()), attn


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Run `model` with eager attention that returns its probabilities; restore it after."""
    config = model.config
    if isinstance(config, BertConfig):  # bertlab's config is shared by every submodule
        before = (config.attn_implementation, config.output_attentions)
        config.attn_implementation, config.output_attentions = "eager", True
        try:
            yield
        finally:
            config.attn_implementation, config.output_attentions = before
        return
    before = config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def gradient_x_input(model: Any, tokenizer: Any, text: str, target: int | None = None,
                     max_length: int = 128) -> Attribution:
    """Gradient x input over the word embeddings for class `target` (default: the prediction).

    Returns an `Attribution` whose ``scores`` (T,) are ``(e_t * dz_target/de_t).sum(-1)``.
    Position and segment embeddings are added inside the model, so only the word part
    of the input is attributed.
    """
    was_training = model.training
    model.eval()  # no dropout: the same text gives the same scores
    device = next(model.parameters()).device
    enc = _encode(tokenizer, text, max_length, device)
    ids = enc.pop("input_ids")
    words = model.get_input_embeddings()(ids).detach().requires_grad_(True)  # (1, T, H)
    logits = model(inputs_embeds=words, **enc).logits[0]  # (C,)
    target = int(logits.argmax()) if target is None else int(target)
    (grad,) = torch.autograd.grad(logits[target], words)  # (1, T, H)
    model.train(was_training)
    scores = (grad * words).sum(-1)[0].detach().float().cpu()  # (T,)
    probs = logits.detach().float().softmax(-1).cpu()
    return Attribution(tokenizer.convert_ids_to_tokens(ids[0].tolist()), scores, target, probs)


def token_bars(tokens: Sequence[str], scores: Any, ax: Any = None,
               title: str = "Gradient x input per token") -> Any:
    """A bar per token: up (blue) pushes towards the target class, down (vermillion) against."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(tokens)), 3.2))
    values = np.asarray(scores, dtype=float)
    colors = [PALETTE[0] if v >= 0 else PALETTE[3] for v in values]
    ax.bar(np.arange(len(values)), values, color=colors)
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_xticks(np.arange(len(values)), list(tokens), rotation=60, ha="right")
    ax.set_xlabel("token")
    ax.set_ylabel("score (logit units)")
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def attention_heatmap(tokens: Sequence[str], weights: Any, ax: Any = None,
                      title: str = "Attention from [CLS], last layer") -> Any:
    """Heatmap of (A, T) weights: one row per head, one column per token it attends to."""
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(tokens)), 0.3 * len(weights) + 1.8))
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0)
    ax.set_xticks(np.arange(len(tokens)), list(tokens), rotation=60, ha="right")
    ax.set_yticks(np.arange(len(weights)), [f"head {i}" for i in range(len(weights))])
    ax.set_xlabel("attended token")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label="attention probability")
    ax.figure.tight_layout()
    return ax.figure
