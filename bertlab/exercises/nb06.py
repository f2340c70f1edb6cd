"""Checks for notebook 06 (embeddings): the embedding sum, mean pooling, similarity search."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.embeddings import mean_pool as reference_mean_pool
from bertlab.exercises import base


@base.register("06.1", "token + position + segment embeddings, then LayerNorm", "embed")
def _embed(embed) -> None:
    gen = torch.Generator().manual_seed(6)
    word, position, segment = (torch.randn(n, 8, generator=gen) for n in (20, 10, 2))
    ids = torch.tensor([[1, 5, 7, 2, 0], [1, 9, 2, 3, 4]])
    types = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]])
    x = word[ids] + position[torch.arange(5)] + segment[types]  # (B, T, H)
    expected = F.layer_norm(x, (8,), eps=1e-12)
    base.close("06.1", embed(ids, types, word, position, segment), expected, atol=1e-5,
                what="embed(ids, types, word, position, segment) for a (2, 5) batch, H = 8")


@base.register("06.2", "mean pooling without the padding", "mean_pool")
def _mean_pool(mean_pool) -> None:
    gen = torch.Generator().manual_seed(7)
    hidden = torch.randn(3, 6, 4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    base.close("06.2", mean_pool(hidden, mask), reference_mean_pool(hidden, mask), atol=1e-6,
                what="mean_pool(hidden (3, 6, 4), mask with 6, 3 and 1 real tokens)")


@base.register("06.3", "the k most similar sentences by cosine", "most_similar")
def _most_similar(most_similar) -> None:
    gen = torch.Generator().manual_seed(8)
    corpus = torch.randn(50, 16, generator=gen) * torch.rand(50, 1, generator=gen) * 10
    query = torch.randn(16, generator=gen)
    scores = F.cosine_similarity(corpus, query[None], dim=-1)
    expected = scores.argsort(descending=True)[:5].tolist()
    answer = most_similar(query, corpus, 5)
    answer = answer.tolist() if isinstance(answer, torch.Tensor) else list(answer)
    if answer == scores.abs().argsort(descending=True)[:5].tolist() and answer != expected:
        raise base.CheckFailed("06.3", "rank by cosine similarity itself, not its absolute value.")
    base.equal("06.3", answer, expected,
                what="the indices of the 5 rows most cosine-similar to the query, best first "
                     "(rows have different lengths: normalise them)")
