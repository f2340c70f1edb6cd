"""Checks for notebook 07 (attention): a causal mask, the padding mask, a sliding window."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.attention import scaled_dot_product_attention
from bertlab.exercises import base


@base.register("07.1", "attention with a causal mask", "causal_attention")
def _causal_attention(causal_attention) -> None:
    gen = torch.Generator().manual_seed(71)
    Q, K, V = (torch.randn(6, 8, generator=gen) for _ in range(3))
    V = V[:, :3]  # (T, d_v) with d_v != d
    expected = F.scaled_dot_product_attention(Q, K, V, is_causal=True)
    answer = causal_attention(Q.clone(), K.clone(), V.clone())
    if not isinstance(answer, torch.Tensor) or answer.shape != expected.shape:
        raise base.CheckFailed("07.1", f"return a (T, d_v) = {tuple(expected.shape)} tensor, the "
                               "weighted averages of the values.")
    backward = F.scaled_dot_product_attention(Q, K, V, attn_mask=torch.ones(6, 6, dtype=torch.bool).triu())
    if torch.allclose(answer, backward, atol=1e-5):
        raise base.CheckFailed(
            "07.1", "each token sees the tokens after it and not those before: a causal mask "
            "keeps the keys s <= t (the lower triangle, torch.tril) and hides s > t.")
    if torch.allclose(answer, F.scaled_dot_product_attention(Q, K, V), atol=1e-5):
        raise base.CheckFailed("07.1", "that is attention without a mask: query t must not see the "
                               "keys after it.")
    unscaled = F.scaled_dot_product_attention(Q, K, V, is_causal=True, scale=1.0)
    if torch.allclose(answer, unscaled, atol=1e-5):
        raise base.CheckFailed("07.1", "the scores are not divided by sqrt(d).")
    scores = (Q @ K.T / 8**0.5).softmax(-1) * torch.ones(6, 6).tril()
    if torch.allclose(answer, scores @ V, atol=1e-5):
        raise base.CheckFailed(
            "07.1", "you zeroed the weights after the softmax, so the rows no longer sum to 1: "
            "mask the scores before the softmax instead.")
    base.close("07.1", answer[0], V[0], atol=1e-5,
               what="row 0 (the first token sees only itself, so its output is V[0])")
    base.close("07.1", answer, expected, atol=1e-5, what="causal_attention(Q (6, 8), K (6, 8), V (6, 3))")


@base.register("07.2", "attention weights with a padding mask", "masked_softmax")
def _masked_softmax(masked_softmax) -> None:
    gen = torch.Generator().manual_seed(72)
    scores = torch.randn(2, 4, 4, generator=gen) * 3
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    expected = scores.masked_fill(mask[:, None, :] == 0, float("-inf")).softmax(-1)
    answer = masked_softmax(scores.clone(), mask.clone())
    if not isinstance(answer, torch.Tensor) or answer.shape != expected.shape:
        raise base.CheckFailed("07.2", "return the (B, T, S) weights, one row per query.")
    if torch.allclose(answer, scores.softmax(-1) * mask[:, None, :], atol=1e-6):
        raise base.CheckFailed(
            "07.2", "you zeroed the padded weights after the softmax, so the rows of sentence 2 "
            "no longer sum to 1: mask the scores before the softmax instead.")
    if torch.allclose(answer, scores.softmax(-1), atol=1e-6):
        raise base.CheckFailed("07.2", "the padded keys still get weight: set their scores to a huge "
                               "negative number (or -inf) before the softmax.")
    if torch.allclose(answer[1, 2:], torch.zeros(2, 4)):
        raise base.CheckFailed(
            "07.2", "you masked the padded queries (rows); the mask is about keys: the "
            "columns of the padded positions must get weight 0 in every row.")
    base.close("07.2", answer, expected, atol=1e-6,
               what="masked_softmax(scores (2, 4, 4), mask (2, 4)): padded keys get weight 0")


@base.register("07.3", "a sliding-window attention mask", "window_mask")
def _window_mask(window_mask) -> None:
    gen = torch.Generator().manual_seed(73)
    for T, window in ((7, 2), (5, 0), (4, 9)):
        answer = window_mask(T, window)
        if not isinstance(answer, torch.Tensor) or answer.shape != (T, T):
            raise base.CheckFailed("07.3", f"window_mask({T}, {window}) must be a ({T}, {T}) tensor.")
        t, s = torch.arange(T)[:, None], torch.arange(T)[None, :]
        expected = (t - s).abs() <= window
        answer = answer.bool()
        where = f"window_mask({T}, {window})"
        if torch.equal(answer, (t - s).abs() < window) and not torch.equal(answer, expected):
            raise base.CheckFailed("07.3", f"{where}: off by one; |t - s| <= window is allowed, so a "
                                   "token at distance exactly `window` is still seen.")
        if torch.equal(answer, expected & (s <= t)) and not torch.equal(answer, expected):
            raise base.CheckFailed("07.3", f"{where}: only the keys before each token are allowed; "
                                   "the window looks both ways, s from t - window to t + window.")
        if torch.equal(answer, ~expected):
            raise base.CheckFailed("07.3", f"{where}: True and False are swapped; True marks the keys a "
                                   "query may attend to.")
        base.equal("07.3", answer.tolist(), expected.tolist(), what=where)
    T, window = 7, 2
    Q, K, V = (torch.randn(T, 4, generator=gen) for _ in range(3))
    out, _ = scaled_dot_product_attention(Q, K, V, window_mask(T, window).bool())
    loop = torch.stack([scaled_dot_product_attention(Q[i:i + 1], K[max(0, i - window):i + window + 1],
                                                     V[max(0, i - window):i + window + 1])[0][0]
                        for i in range(T)])
    base.close("07.3", out, loop, atol=1e-5, what="attention with your mask vs a loop over each token's neighbours")
