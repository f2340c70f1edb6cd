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

Packed (padding-free) batches, notebook 11: sentences laid end to end in a row, the
attention mask numbering them (1, 2, ..., K in each row, 0 = padding). `packed_layout`
derives what the model needs from that mask: positions restarting at every sentence, a
block-diagonal mask so that no token looks across a sentence, and each sentence's [CLS].
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.errors import ParameterError

IMPLEMENTATIONS = ("eager", "sdpa", "varlen")


def _find_varlen_attn():
    """torch.nn.attention.varlen.varlen_attn where the installed torch has it, else None."""
    for name in ("torch.nn.attention", "torch.nn.attention.varlen"):
        if importlib.util.find_spec(name) is None:
            return None
    return getattr(importlib.import_module("torch.nn.attention.varlen"), "varlen_attn", None)


varlen_attn = _find_varlen_attn()
_varlen_warned = False  # the fallback is announced once per process


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a tokenizer's (B, S) attention mask (1 = token, 0 = padding) into a key mask.

    Returns a boolean (B, 1, 1, S) tensor, True where a key may be attended; it broadcasts
    over heads (dim 1) and over queries (dim 2) against scores of shape (B, h, T, S).
    """
    return attention_mask[:, None, None, :].bool()  # (B, 1, 1, S)


# ---------------------------------------------------------------------------------------
# Packed batches: the layout of the sentences, read from the attention mask


def is_packed(attention_mask: torch.Tensor) -> bool:
    """Whether a (B, T) mask is a packed one: some row's largest value is not 1.

    That is a row holding two or more sentences, or an empty row (no sentence, no output).
    A mask whose every row holds one sentence (0s and 1s) is an ordinary padded batch and
    takes notebook 08's path. (One look at the values: a host sync; `mask_layout` also
    tells a mask without padding, which needs no mask at all.)

    Inside `torch.compile` the answer is always True, without the look: a branch on a
    tensor's values would break the graph in two, and the packed path reads a 0/1 mask
    exactly as the padded path does (one sentence per row: positions 0.., attention
    within the sentence, [CLS] at token 0), only by other kernels.
    """
    if torch.compiler.is_compiling():
        return True
    return bool((attention_mask.amax(dim=1) != 1).any())


def mask_layout(attention_mask: torch.Tensor) -> str:
    """What a (B, T) mask asks of the model, with one look at its values (one host sync):

    - "packed": sentence numbers (`is_packed`): positions, block mask and [CLS] per sentence;
    - "padded": 0s and 1s with some padding: the key mask of `padding_mask`;
    - "full": all 1s, nothing to mask: attention runs without a mask, which lets SDPA pick
      its fastest kernel (as transformers does when a batch has no padding).

    Inside `torch.compile`, always "packed", without the look (see `is_packed`).
    """
    if torch.compiler.is_compiling():
        return "packed"
    packed, padded = torch.stack([(attention_mask.amax(dim=1) != 1).any(), (attention_mask == 0).any()]).tolist()
    return "packed" if packed else "padded" if padded else "full"


def run_starts(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, T) bool, True where a run of equal mask values begins (and at token 0).

    A run is one sentence, or one stretch of padding: each sentence's tokens are
    contiguous, the k-th sentence of a row after the (k-1)-th.
    """
    m = attention_mask
    starts = torch.ones_like(m, dtype=torch.bool)  # (B, T)
    starts[:, 1:] = m[:, 1:] != m[:, :-1]
    return starts


def first_tokens(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) sentence numbers -> (B, T) bool, True at the first token ([CLS]) of each sentence."""
    return run_starts(attention_mask) & (attention_mask != 0)  # (B, T)


def block_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) sentence numbers -> (B, 1, T, T) bool: query t may attend key s when both carry
    the same number (the same sentence, or both padding). Static shapes, no host sync."""
    m = attention_mask
    return m[:, None, :, None] == m[:, None, None, :]  # (B, 1, T, T)


def packed_layout(attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From a packed (B, T) mask (k = k-th sentence of the row, 0 = padding), three tensors:

    - positions (B, T): the position of each token in its own sentence, 0 at its [CLS];
      padding counts on from its own first slot (harmless: padding is never attended);
    - block mask (B, 1, T, T) bool: query t may attend key s when both carry the same
      number, so attention never crosses a sentence; padding attends only to padding
      (never an all-masked row, which would make NaNs), and no sentence attends to it;
    - starts (N, 2): (row, token) of each sentence's [CLS], row by row, then by k.
    """
    m = attention_mask
    B, T = m.shape
    t = torch.arange(T, device=m.device).expand(B, T)  # (B, T)
    new_run = run_starts(m)  # (B, T)
    run_start = torch.where(new_run, t, 0).cummax(dim=1).values  # (B, T): index of the run's first token
    positions = t - run_start  # (B, T)
    block = block_mask(m)  # (B, 1, T, T)
    starts = torch.nonzero(new_run & (m != 0))  # (N, 2), row-major: by row, then by k
    return positions, block, starts


def varlen_offsets(attention_mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cumulative offsets (R + 1,) int32 and the longest run, for variable-length kernels.

    The (B, T) tokens are read as one flat sequence of B * T tokens cut into runs: each
    sentence is a run and each stretch of padding is a run of its own, so it attends only
    to itself (the block mask, when padding sits at the end of a row as `pack` puts it).
    """
    m = attention_mask
    begin = torch.nonzero(run_starts(m).flatten()).squeeze(1)  # (R,); every row's token 0 begins one
    end = torch.tensor([m.numel()], device=m.device)
    cu_seqlens = torch.cat([begin, end]).to(torch.int32)  # (R + 1,)
    return cu_seqlens, int((cu_seqlens[1:] - cu_seqlens[:-1]).max())


def varlen_unavailable(q: torch.Tensor) -> str | None:
    """Why the variable-length kernel cannot run on queries `q`, or None when it can."""
    if varlen_attn is None:
        return f"torch {torch.__version__} has no torch.nn.attention.varlen"
    if not q.is_cuda:
        return f"the tensors are on {q.device.type}, not CUDA"
    if q.dtype not in (torch.float16, torch.bfloat16):
        return f"the tensors are {q.dtype}, not float16 or bfloat16 (use bf16 autocast)"
    return None


def _warn_fallback(reason: str) -> None:
    global _varlen_warned
    if not _varlen_warned:
        _varlen_warned = True
        warnings.warn(f'attn_implementation="varlen" ran SDPA with a block-diagonal mask instead, '
                      f"because {reason}.", stacklevel=4)


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
        varlen: tuple[torch.Tensor, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, H), mask boolean broadcastable to (B, h, T, T) -> (B, T, H), probs.

        `implementation` is "eager" (our own code), "sdpa" (PyTorch's fused kernel, the
        same numbers, faster) or "varlen". The probabilities (B, h, T, T) are returned only
        when `return_probs` is true, which always takes the eager path: SDPA never forms them.

        "varlen" is for packed batches: given `varlen` = `varlen_offsets(attention_mask)`
        it runs `torch.nn.attention.varlen.varlen_attn` on the B * T tokens, sentence by
        sentence, with no (B, h, T, T) mask at all. It needs that module, CUDA and float16
        or bfloat16 (bf16 autocast); elsewhere SDPA runs with the block mask `mask`, and a
        warning says so once. An ordinary padded batch (`varlen` None) runs SDPA.

        Attention dropout: variable-length kernels take no dropout argument, so the varlen
        path drops no attention probabilities, in training too (hidden dropout still
        applies). The eager and SDPA paths, packed or not, drop them with p = `dropout`.
        """
        if implementation not in IMPLEMENTATIONS:
            raise ParameterError(
                f'attn_implementation must be "eager", "sdpa" or "varlen", not {implementation!r}.'
            )
        B, T, H = x.shape
        q, k, v = self.query(x), self.key(x), self.value(x)  # (B, T, H) each
        if implementation == "varlen" and varlen is not None and not return_probs:
            reason = varlen_unavailable(q)
            if reason is None:
                cu_seqlens, longest = varlen
                q, k, v = (y.view(B * T, self.num_heads, -1) for y in (q, k, v))  # (B*T, h, d)
                out = varlen_attn(q, k, v, cu_seqlens, cu_seqlens, longest, longest)  # (B*T, h, d)
                return out.reshape(B, T, H), None
            _warn_fallback(reason)
        q, k, v = (split_heads(y, self.num_heads) for y in (q, k, v))  # (B, h, T, d) each
        p = self.dropout if self.training else 0.0
        if implementation == "eager" or return_probs:
            out, probs = scaled_dot_product_attention(q, k, v, mask, dropout_p=p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            probs = None
        return merge_heads(out), (probs if return_probs else None)  # (B, T, H), (B, h, T, T)
