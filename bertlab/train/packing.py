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
from bertlab.heads import BertForSequenceClassification
from bertlab.layout import layout_of, slot_labels


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


def sentence_lengths(attention_mask: torch.Tensor) -> list[int]:
    """The real length of each sentence of a batch, in the model's output order: one per row
    of a padded mask (0s and 1s), one per sentence number 1..K of each row of a packed one."""
    lengths = []
    for row in attention_mask.tolist():
        counts: dict[int, int] = {}
        for k in row:
            if k:
                counts[k] = counts.get(k, 0) + 1
        lengths.extend(counts[k] for k in sorted(counts))
    return lengths


class PackCollator:
    """What `fit` uses with ``packing=True``: one step's sentences as one `PackedBatch` dict.

    A step keeps its `batch_size` sentences (the same optimisation as a padded run, sentence
    for sentence), laid first fit in the (rows, row_tokens) of fewest tokens (`layout`), so
    that a last row is not left mostly empty. The shape varies from step to step, as with
    dynamic padding; the number of sentences does not. With `rows` set (`static_rows`), every
    step is (rows, max_length): one shape, so torch.compile compiles once.

    The batch also carries its layout (``"packed"``: a `bertlab.layout.PackedLayout` with
    `slots` sentence slots, at least the step's sentences), computed here on the host, so
    that the model reads nothing from the mask's values: no host sync, one graph; its labels
    are then (slots,), -100 in the empty slots.
    """

    def __init__(self, tokenizer: object, max_length: int, rows: int = 0, slots: int = 0):
        self.tokenizer, self.max_length, self.rows, self.slots = tokenizer, max_length, rows, slots

    def layout(self, lengths: Sequence[int]) -> tuple[int, int]:
        """(rows, row_tokens) of the fewest tokens in which first fit lays these sentence
        lengths (each <= max_length): row_tokens is tried at every multiple of 8 from the
        longest sentence up to max_length, with as many rows as first fit then fills."""
        best = None
        for width in [*range(-(-max(lengths) // 8) * 8, self.max_length, 8), self.max_length]:
            rows = sum(1 for row in first_fit(lengths, width, len(lengths))[0] if row)
            if best is None or rows * width < best[0] * best[1]:
                best = (rows, width)
        return best

    def __call__(self, examples: Sequence[object]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer([ex.text for ex in examples], truncation=True, max_length=self.max_length)
        ids = enc["input_ids"]
        types = enc.get("token_type_ids") or [[0] * len(x) for x in ids]
        lengths = [len(x) for x in ids]
        if self.rows:  # the run's one shape (more rows only if a step needs them: a new shape)
            width = self.max_length
            rows = max(self.rows, sum(1 for row in first_fit(lengths, width, len(lengths))[0] if row))
        else:
            rows, width = self.layout(lengths)
        pad = getattr(self.tokenizer, "pad_token_id", 0) or 0
        (batch,) = pack(ids, types, [ex.label for ex in examples], width, rows, pad)
        slots = max(self.slots, len(examples))
        return {**batch.model_inputs(), "labels": slot_labels(batch.labels, slots),
                "packed": layout_of(batch.attention_mask, slots)}


def static_rows(lengths: Sequence[int], batches: Sequence[Sequence[int]], max_length: int) -> int:
    """The most rows of `max_length` tokens that first fit needs for any of `batches` (lists of
    indices into `lengths`, token lengths): the one shape that holds every step of a run."""
    return max(sum(1 for row in first_fit([min(int(lengths[i]), max_length) for i in b], max_length, len(b))[0] if row)
               for b in batches)


def check_packable(model: object) -> None:
    """Raise one sentence unless `model` is the course's own classifier (which reads packed masks)."""
    inner = getattr(model, "module", model)  # under DistributedDataParallel
    if not isinstance(inner, BertForSequenceClassification):
        raise ParameterError(f"packing=True needs the course's own classifier (bertlab.heads.BertForSequenceClassification, "
                             f"implementation='bertlab'), not {type(inner).__name__}, which has no padding-free path; "
                             "set packing=False for it.")


def packed_collator(model: object, tokenizer: object, cfg: object, lengths: Sequence[int],
                    batches: Sequence[Sequence[int]]) -> PackCollator:
    """`fit`'s collator with ``packing=True``, after checking `model` reads packed masks. With
    ``compile=True``, one static shape: the rows that the run's largest micro-batch needs
    (`batches`: every step's indices into `lengths`, each split into micro-batches), and
    `batch_size` sentence slots (`bertlab.layout`)."""
    check_packable(model)
    micro = [b[i : i + cfg.batch_size] for b in batches for i in range(0, len(b), cfg.batch_size)]
    rows = static_rows(lengths, micro, cfg.max_length) if cfg.compile else 0
    return PackCollator(tokenizer, cfg.max_length, rows, slots=cfg.batch_size)
