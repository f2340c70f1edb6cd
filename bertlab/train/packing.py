"""Padding-free batches: sentences laid end to end in rows of a fixed token budget.

Derived in notebook 11. Dynamic padding (`bertlab.train.batching`) still pads every
sentence to the longest of its batch. Packing pads almost nothing: each row of a step is
filled with whole sentences, one after another, and the attention mask numbers them

    input_ids       [CLS] a a [SEP] [CLS] b b b [SEP] [PAD] [PAD]
    attention_mask    1   1 1   1     2   2 2 2   2     0     0

so that the model (`bertlab.model.BertModel`) restarts positions at each [CLS], keeps
attention inside each sentence and classifies each sentence from its own [CLS].

**How rows are filled: first fit, in the given order.** Each sentence goes into the first
row of the current step with room for it; when no row has room, the step is complete and
the sentence opens the next one. The given (shuffled) order is kept, so no step is made of
sentences of one length (sorting by length, as first-fit *decreasing* would, brings back
bucketing's price, see `bertlab.train.batching`). A sentence longer than `row_tokens` is
truncated to it: its first ``row_tokens - 1`` tokens and its final [SEP].

**A step has a token budget, not a batch size.** Every step is `rows` x `row_tokens`
tensors (one static shape, so torch.compile compiles once), and holds as many sentences as
fit: many short ones or a few long ones. The number of sentences N varies from step to
step; on average it is about ``rows * row_tokens * fill / mean_length``. To match a padded
run's `batch_size`, choose ``rows * row_tokens`` close to ``batch_size * mean_length``. The
loss is the mean over the step's N sentences. The last step may have empty rows (all 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bertlab.errors import ParameterError


@dataclass
class PackedBatch:
    """One step: what `BertForSequenceClassification(**batch.model_inputs())` reads."""

    input_ids: torch.Tensor  # (rows, row_tokens)
    token_type_ids: torch.Tensor  # (rows, row_tokens)
    attention_mask: torch.Tensor  # (rows, row_tokens): k = k-th sentence of the row, 0 = padding
    labels: torch.Tensor  # (N,): the labels of the sentences, in the model's output order
    order: torch.Tensor  # (N,): which input sentence each output row is (row by row, then by k)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "token_type_ids": self.token_type_ids,
                "attention_mask": self.attention_mask, "labels": self.labels}


def truncate(ids: Sequence[int], row_tokens: int) -> list[int]:
    """The first ``row_tokens - 1`` ids and the last one ([SEP]), if longer than `row_tokens`."""
    ids = list(ids)
    return ids if len(ids) <= row_tokens else ids[: row_tokens - 1] + ids[-1:]


def first_fit(lengths: Sequence[int], row_tokens: int, rows: int) -> list[list[list[int]]]:
    """Steps of rows of sentence indices: first fit in the given order (see the module doc).

    lengths[i] <= row_tokens. Returns steps[s][r] = the indices laid, in order, in row r.
    """
    steps: list[list[list[int]]] = []
    rows_now: list[list[int]] = [[] for _ in range(rows)]
    room = [row_tokens] * rows
    for i, n in enumerate(lengths):
        r = next((r for r in range(rows) if room[r] >= n), None)
        if r is None:  # no row has room: this step is full
            steps.append(rows_now)
            rows_now, room, r = [[] for _ in range(rows)], [row_tokens] * rows, 0
        rows_now[r].append(i)
        room[r] -= n
    if any(rows_now):
        steps.append(rows_now)
    return steps


def pack(
    input_ids: Sequence[Sequence[int]],
    token_type_ids: Sequence[Sequence[int]],
    labels: Sequence[int],
    row_tokens: int = 256,
    rows: int = 8,
    pad_token_id: int = 0,
) -> list[PackedBatch]:
    """Pack tokenized sentences (each [CLS] ... [SEP]) into steps of (rows, row_tokens).

    input_ids and token_type_ids: one list of ids per sentence (a tokenizer's output
    without padding); labels: one per sentence. Every sentence appears in exactly one
    step, once; `order` says where each came from.
    """
    if row_tokens < 2 or rows < 1:
        raise ParameterError(f"pack needs row_tokens >= 2 and rows >= 1, not {row_tokens} and {rows}.")
    if not len(input_ids) == len(token_type_ids) == len(labels):
        raise ParameterError(f"pack got {len(input_ids)} sentences, {len(token_type_ids)} token type "
                             f"lists and {len(labels)} labels; give one of each per sentence.")
    ids = [truncate(x, row_tokens) for x in input_ids]
    types = [truncate(x, row_tokens) for x in token_type_ids]
    batches = []
    for step in first_fit([len(x) for x in ids], row_tokens, rows):
        shape = (rows, row_tokens)
        batch_ids = torch.full(shape, pad_token_id, dtype=torch.long)
        batch_types = torch.zeros(shape, dtype=torch.long)
        mask = torch.zeros(shape, dtype=torch.long)
        order = []
        for r, members in enumerate(step):
            t = 0
            for k, i in enumerate(members, start=1):
                n = len(ids[i])
                batch_ids[r, t : t + n] = torch.tensor(ids[i])
                batch_types[r, t : t + n] = torch.tensor(types[i])
                mask[r, t : t + n] = k
                order.append(i)
                t += n
        order_t = torch.tensor(order, dtype=torch.long)  # (N,)
        batches.append(PackedBatch(batch_ids, batch_types, mask,
                                   torch.as_tensor(list(labels))[order_t], order_t))
    return batches
