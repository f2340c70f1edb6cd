"""Classification heads on a pretrained encoder, and frozen sentence features.

Derived in notebook 10 (fine-tuning): a sentence classifier puts a small head on top of
the encoder's hidden states (B, T, H). Two ways to turn T vectors into one:

- **[CLS] pooling**: take the vector of the first token, ``hidden[:, 0]``; during
  fine-tuning the encoder learns to gather the sentence's meaning there;
- **mean pooling**: average the vectors of the real (non-padding) tokens,
  ``sum_t m_t h_t / sum_t m_t``, as sentence-transformers models such as the bundled
  all-MiniLM-L6-v2 were trained to do.

`PooledClassifier` fine-tunes either; `sentence_features` computes both from a frozen
Hugging Face encoder for the logistic-regression baseline (unnormalised; for the
normalised sentence-transformers embedding see `bertlab.embeddings.encode`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from bertlab.embeddings import mean_pool  # notebook 06: the masked mean of token vectors
from bertlab.errors import ParameterError

POOLINGS = ("cls", "mean")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sentence: ``"cls"`` takes token 0, ``"mean"`` averages real tokens."""
    if pooling == "cls":
        return hidden[:, 0]  # (B, H)
    if pooling == "mean":
        return mean_pool(hidden, attention_mask)
    raise ParameterError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}.")


class PooledClassifier(nn.Module):
    """An encoder, a pooling step and a linear head: logits = W dropout(pool(h)) + b.

    `encoder` is a Hugging Face encoder such as ``bertlab.hub.load_encoder("minilm")``;
    ``forward(input_ids, attention_mask, token_type_ids=None)`` returns logits (B, C).
    """

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str = "cls",
                 dropout: float = 0.1):
        super().__init__()
        if pooling not in POOLINGS:
            raise ParameterError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}.")
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state  # (B, T, H)
        return self.head(self.dropout(pool(hidden, attention_mask, self.pooling)))  # (B, C)


@torch.no_grad()
def sentence_features(encoder: nn.Module, tokenizer: Any, texts: Sequence[str],
                      batch_size: int = 64, max_length: int = 128) -> dict[str, torch.Tensor]:
    """Frozen features of each text from one pass: {"cls": (N, H), "mean": (N, H)}.

    The encoder is put in eval mode (no dropout); batches are padded to their longest
    member only.
    """
    encoder.eval()
    device = next(encoder.parameters()).device
    out: dict[str, list[torch.Tensor]] = {"cls": [], "mean": []}
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        hidden = encoder(**batch).last_hidden_state  # (B, T, H)
        out["cls"].append(hidden[:, 0].float().cpu())
        out["mean"].append(mean_pool(hidden, batch["attention_mask"]).float().cpu())
    width = encoder.config.hidden_size
    return {k: torch.cat(v) if v else torch.empty(0, width) for k, v in out.items()}
