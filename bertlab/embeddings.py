"""Sentence embeddings: mean pooling of the from-scratch BERT's token vectors.

Derived in notebook 06 (embeddings): a sentence's vector is the average of its tokens'
last hidden states, padding left out, scaled to length 1. With the bundled
all-MiniLM-L6-v2 this is exactly what `sentence-transformers` computes (its modules are a
BERT, mean pooling and L2 normalisation), and the two agree to 1e-5. Notebook 10 reuses
`mean_pool`; its frozen-embedding baseline comes from `bertlab.finetune_basics.sentence_features`
(the [CLS] and mean-pooled vectors of the Hugging Face encoder), not from `encode`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from bertlab import env, hub
from bertlab.errors import ParameterError
from bertlab.model import BertModel


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average each sentence's token vectors, leaving out padding.

    last_hidden_state (B, T, H), attention_mask (B, T) with 1 = token, 0 = padding
    -> (B, H). A row with no tokens gives zeros instead of dividing by zero.
    """
    weights = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
    total = (last_hidden_state * weights).sum(dim=1)  # (B, H)
    count = weights.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return total / count


@functools.lru_cache(maxsize=4)
def load(model: str = "minilm") -> tuple[Any, BertModel, int]:
    """(tokenizer, from-scratch BertModel in eval mode, max_length) for `model`, cached per name.

    max_length is the sentence-transformers setting of the model (256 for MiniLM) when the
    folder has one, else the number of positions the model knows.
    """
    folder = hub.model_dir(model)  # the name is resolved once; everything below reads this folder
    bert = BertModel.from_pretrained(str(folder)).to(env.pick_device("auto"))
    settings = folder / "sentence_bert_config.json"
    max_length = bert.config.max_position_embeddings
    if settings.exists():
        max_length = min(max_length, int(json.loads(settings.read_text())["max_seq_length"]))
    return hub.load_tokenizer(str(folder)), bert, max_length


@torch.no_grad()
def encode(sentences: Sequence[str], model: str = "minilm", batch_size: int = 32) -> torch.Tensor:
    """L2-normalised sentence embeddings (N, H) of `sentences`, returned on the CPU.

    The model runs on the device `bertlab.env.pick_device("auto")` picks. Sentences are
    sorted by length before batching, so each batch pads little (dynamic padding), and
    returned in the order given.
    """
    if isinstance(sentences, str):
        sentences = [sentences]
    if batch_size < 1:
        raise ParameterError(f"batch_size must be at least 1, not {batch_size}.")
    tokenizer, bert, max_length = load(model)
    device = next(bert.parameters()).device
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    out = torch.empty(len(sentences), bert.config.hidden_size)  # (N, H)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = tokenizer([sentences[i] for i in idx], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = bert(batch["input_ids"], batch.get("token_type_ids"), batch["attention_mask"])
        pooled = mean_pool(hidden.last_hidden_state, batch["attention_mask"])  # (b, H)
        out[idx] = F.normalize(pooled, p=2, dim=-1).cpu()
    return out
