"""Checks for notebook 08 (BERT from scratch): the feed-forward, add & norm, parameter count."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.exercises import base
from bertlab.model import BertConfig, count_parameters


@base.register("08.1", "BERT's GELU feed-forward", "feed_forward")
def _feed_forward(feed_forward) -> None:
    gen = torch.Generator().manual_seed(81)
    x = torch.randn(2, 3, 4, generator=gen)
    W1, b1 = torch.randn(16, 4, generator=gen), torch.randn(16, generator=gen)
    W2, b2 = torch.randn(4, 16, generator=gen), torch.randn(4, generator=gen)
    expected = F.linear(F.gelu(F.linear(x, W1, b1)), W2, b2)
    answer = feed_forward(x, W1, b1, W2, b2)
    if torch.allclose(torch.as_tensor(answer), F.linear(F.relu(F.linear(x, W1, b1)), W2, b2)):
        raise base.CheckFailed("08.1", "that is a ReLU feed-forward; BERT's uses GELU (exact, erf).")
    base.close("08.1", answer, expected, atol=1e-5, what="feed_forward(x (2, 3, 4), W1 (16, 4), ...)")


@base.register("08.2", "add & norm (post-LayerNorm residual)", "add_norm")
def _add_norm(add_norm) -> None:
    gen = torch.Generator().manual_seed(82)
    x, sub = torch.randn(2, 3, 6, generator=gen), torch.randn(2, 3, 6, generator=gen)
    w, b = torch.randn(6, generator=gen), torch.randn(6, generator=gen)
    expected = F.layer_norm(x + sub, (6,), w, b, eps=1e-12)
    base.close("08.2", add_norm(x, sub, w, b), expected, atol=1e-5,
                what="add_norm(x, sublayer_out, weight, bias) = LayerNorm(x + sublayer_out)")


@base.register("08.3", "BERT's parameter count by formula", "count_bert_parameters")
def _count(count_bert_parameters) -> None:
    configs = [
        BertConfig(),  # bert-base
        BertConfig(hidden_size=384, num_hidden_layers=6, intermediate_size=1536),  # MiniLM-L6
        BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                   intermediate_size=100, max_position_embeddings=128, type_vocab_size=3),
    ]
    for c in configs:
        answer = count_bert_parameters(c.vocab_size, c.hidden_size, c.num_hidden_layers,
                                       c.intermediate_size, c.max_position_embeddings, c.type_vocab_size)
        base.equal("08.3", answer, count_parameters(c),
                    what=f"the count for hidden {c.hidden_size}, {c.num_hidden_layers} layers, "
                         f"vocab {c.vocab_size} (with the pooler)")
