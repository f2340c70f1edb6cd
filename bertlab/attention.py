"""Scaled dot-product attention with a padding mask, and multi-head self-attention.

Derived in notebook 07 (attention); `bertlab.model` builds BERT's encoder layers from
`MultiHeadSelfAttention`, and notebook 12 reads the attention probabilities again.

Dimension legend, used in every shape comment of the course's attention code:

    B  batch size                 T  query positions (tokens)
    S  key/value positions        (S = T in self-attention)
    H  hidden size                h  number of heads
    d  size of one head           H = h * d

Attention (Vaswani et al. 2017, https://arxiv.org/abs/1706.03762, eq. 1):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V

The scores are dot products of queries with keys (one number per query-key pair), the
softmax over keys turns each row into weights that sum to 1, and the output is the weighted
average of the values. With one key the softmax of a single score is 1, so the output is
that key's value, whatever the score.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.errors import ParameterError

IMPLEMENTATIONS = ("eager", "sdpa")


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a tokenizer's (B, S) attention mask (1 = token, 0 = padding) into a key mask.

    Returns a boolean (B, 1, 1, S) tensor, True where a key may be attended; it broadcasts
    over heads (dim 1) and over queries (dim 2) against scores of shape (B, h, T, S).
    """
    return attention_mask[:, None, None, :].bool()  # (B, 1, 1, S)


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d)) V, written out so that the probabilities can be looked at.

    query (..., T, d), key (..., S, d), value (..., S, d_v); `mask` is boolean and
    broadcastable to (..., T, S), True where a query may attend to a key (see
    `padding_mask`). Returns the output (..., T, d_v) and the probabilities (..., T, S)
    (before dropout; `dropout_p` > 0 drops probabilities as BERT does in training).
    """
    scale = 1.0 / math.sqrt(query.size(-1))
    scores = (query @ key.transpose(-2, -1)) * scale  # (..., T, S)
    if mask is not None:
        # The most negative number, not -inf: a row with every key masked stays finite.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    probs = scores.softmax(dim=-1)  # (..., T, S), each row sums to 1
    dropped = F.dropout(probs, p=dropout_p) if dropout_p > 0 else probs
    return dropped @ value, probs  # (..., T, d_v), (..., T, S)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, H) -> (B, h, T, d): the H features are h heads of d features side by side."""
    B, T, H = x.shape
    return x.view(B, T, num_heads, H // num_heads).transpose(1, 2)  # (B, h, T, d)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, T, d) -> (B, T, H): concatenate the heads again."""
    B, h, T, d = x.shape
    return x.transpose(1, 2).reshape(B, T, h * d)  # (B, T, H)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention: head_i = Attention(X W_i^Q, X W_i^K, X W_i^V).

    The h per-head projections W_i^Q (H x d) are stored side by side as one H x H linear
    layer each for queries, keys and values, named as in Hugging Face's BERT (`query`,
    `key`, `value`), so pretrained weights load by name. The output projection W^O lives
    in the next module (BERT's `attention.output.dense`).
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if hidden_size % num_heads:
            raise ParameterError(
                f"hidden_size ({hidden_size}) must be a multiple of the number of heads "
                f"({num_heads}); each head gets hidden_size / num_heads features."
            )
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        implementation: str = "sdpa",
        return_probs: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, H), mask boolean broadcastable to (B, h, T, T) -> (B, T, H), probs.

        `implementation` is "eager" (our own code) or "sdpa" (PyTorch's fused kernel, the
        same numbers, faster). The probabilities (B, h, T, T) are returned only when
        `return_probs` is true, which always takes the eager path: SDPA never forms them.
        """
        if implementation not in IMPLEMENTATIONS:
            raise ParameterError(
                f'attn_implementation must be "eager" or "sdpa", not {implementation!r}.'
            )
        q = split_heads(self.query(x), self.num_heads)  # (B, h, T, d)
        k = split_heads(self.key(x), self.num_heads)  # (B, h, T, d)
        v = split_heads(self.value(x), self.num_heads)  # (B, h, T, d)
        p = self.dropout if self.training else 0.0
        if implementation == "eager" or return_probs:
            out, probs = scaled_dot_product_attention(q, k, v, mask, dropout_p=p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            probs = None
        return merge_heads(out), (probs if return_probs else None)  # (B, T, H), (B, h, T, T)
