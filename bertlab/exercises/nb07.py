"""Checks for notebook 07 (attention): attention itself, the padding mask, multi-head."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.attention import MultiHeadSelfAttention
from bertlab.exercises import base


@base.register("07.1", "scaled dot-product attention", "attention")
def _attention(attention) -> None:
    gen = torch.Generator().manual_seed(71)
    Q, K, V = torch.randn(4, 8, generator=gen), torch.randn(6, 8, generator=gen), torch.randn(6, 3, generator=gen)
    base.close("07.1", attention(Q, K, V), F.scaled_dot_product_attention(Q, K, V), atol=1e-5,
                what="attention(Q (4, 8), K (6, 8), V (6, 3))")
    q, k, v = torch.randn(1, 8, generator=gen), torch.randn(1, 8, generator=gen), torch.randn(1, 3, generator=gen)
    base.close("07.1", attention(q, k, v), v, atol=1e-6,
                what="with one key the softmax is 1, so the output must be V itself")


@base.register("07.2", "attention weights with a padding mask", "masked_softmax")
def _masked_softmax(masked_softmax) -> None:
    gen = torch.Generator().manual_seed(72)
    scores = torch.randn(2, 4, 4, generator=gen) * 3
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    expected = scores.masked_fill(mask[:, None, :] == 0, float("-inf")).softmax(-1)
    base.close("07.2", masked_softmax(scores, mask), expected, atol=1e-6,
                what="masked_softmax(scores (2, 4, 4), mask (2, 4)): padded keys get weight 0")


@base.register("07.3", "multi-head attention with per-head projections", "multi_head")
def _multi_head(multi_head) -> None:
    torch.manual_seed(73)
    mha = MultiHeadSelfAttention(hidden_size=12, num_heads=3)
    for lin in (mha.query, mha.key, mha.value):
        torch.nn.init.zeros_(lin.bias)
    X = torch.randn(5, 12)
    with torch.no_grad():
        expected, _ = mha(X[None], implementation="eager")
        answer = multi_head(X, mha.query.weight, mha.key.weight, mha.value.weight, 3)
    base.close("07.3", answer, expected[0], atol=1e-5,
                what="multi_head(X (5, 12), Wq, Wk, Wv (12, 12), num_heads=3), heads concatenated")
