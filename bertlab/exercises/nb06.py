"""Checks for notebook 06 (embeddings): max pooling, mean pooling, similarity search."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.embeddings import mean_pool as reference_mean_pool
from bertlab.exercises import base


@base.register("06.1", "max pooling over the real tokens", "max_pool")
def _max_pool(max_pool) -> None:
    gen = torch.Generator().manual_seed(6)
    hidden = torch.randn(3, 6, 4, generator=gen) - 1.0  # mostly negative values
    hidden[1, 3:] = 5.0  # padding that would win the max if it counted
    hidden[2, 1:, 0] = 0.0  # and zeros in the padding of row 2
    hidden[2, 0, 0] = -2.0  # whose only real token is negative in feature 0
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    expected = torch.stack([hidden[b, : int(mask[b].sum())].amax(0) for b in range(3)])
    answer = max_pool(hidden.clone(), mask.clone())
    if not isinstance(answer, torch.Tensor) or answer.shape != expected.shape:
        raise base.CheckFailed("06.1", f"return a (B, H) = {tuple(expected.shape)} tensor of values; "
                               "torch.max over a dim returns (values, indices), keep the values.")
    if torch.allclose(answer, hidden.amax(1)):
        raise base.CheckFailed("06.1", "the padding took part: in row 1 its vectors hold 5.0 and won the "
                               "max. Leave the padded positions out.")
    if torch.allclose(answer, (hidden * mask[..., None]).amax(1)):
        raise base.CheckFailed(
            "06.1", "you multiplied by the mask, which turns the padding into zeros, and a 0 beats "
            "every negative value (row 2, feature 0). Fill the padding with the most negative "
            "number (or -inf) before taking the max.")
    base.close("06.1", answer, expected, atol=1e-6,
               what="max_pool(hidden (3, 6, 4), mask with 6, 3 and 1 real tokens)")


@base.register("06.2", "mean pooling without the padding", "mean_pool")
def _mean_pool(mean_pool) -> None:
    gen = torch.Generator().manual_seed(7)
    hidden = torch.randn(3, 6, 4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    answer = mean_pool(hidden.clone(), mask.clone())
    shape_ok = isinstance(answer, torch.Tensor) and answer.shape == (3, 4)
    if shape_ok and torch.allclose(answer, (hidden * mask[..., None]).sum(1) / 6, atol=1e-6):
        raise base.CheckFailed("06.2", "the padding is out of the sum but still in the count: divide by "
                               "the number of real tokens of each row (mask.sum), not by T.")
    if shape_ok and torch.allclose(answer, hidden.mean(1), atol=1e-6):
        raise base.CheckFailed("06.2", "that is the mean over all T positions, padding included.")
    base.close("06.2", answer, reference_mean_pool(hidden, mask), atol=1e-6,
               what="mean_pool(hidden (3, 6, 4), mask with 6, 3 and 1 real tokens)")


@base.register("06.3", "the k most similar sentences by cosine", "most_similar")
def _most_similar(most_similar) -> None:
    gen = torch.Generator().manual_seed(8)
    corpus = torch.randn(50, 16, generator=gen) * torch.rand(50, 1, generator=gen) * 10
    query = torch.randn(16, generator=gen)
    scores = F.cosine_similarity(corpus, query[None], dim=-1)
    expected = scores.argsort(descending=True)[:5].tolist()
    answer = most_similar(query.clone(), corpus.clone(), 5)
    answer = answer.tolist() if isinstance(answer, torch.Tensor) else list(answer)
    if answer == scores.abs().argsort(descending=True)[:5].tolist() and answer != expected:
        raise base.CheckFailed("06.3", "rank by cosine similarity itself, not its absolute value.")
    if answer == (corpus @ query).argsort(descending=True)[:5].tolist() and answer != expected:
        raise base.CheckFailed("06.3", "you ranked by the dot product, which favours long rows: divide "
                               "by the rows' lengths (normalise them) to rank by cosine.")
    if answer == scores.argsort()[:5].tolist():
        raise base.CheckFailed("06.3", "those are the 5 least similar rows: best first means the "
                               "largest cosines.")
    base.equal("06.3", answer, expected,
               what="the indices of the 5 rows most cosine-similar to the query, best first "
                    "(rows have different lengths: normalise them)")
