"""Checks for notebook 11 (fast fine-tuning): the FLOPs that padding wastes, varlen offsets.

11.1 applies section 1's training FLOPs to the layouts of section 2 (padded to `max_length`,
dynamic padding, packing) over a whole epoch; 11.2 computes, for a packed batch, the offsets
`cu_seqlens` and the longest run that `bertlab.attention.varlen_offsets` gives the
variable-length attention kernel.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from bertlab.attention import varlen_offsets
from bertlab.exercises import base

LAYOUTS = ("padded", "dynamic", "packed")
RTOL = 1e-5  # the relative tolerance of `base.close`


# ---------------------------------------------------------------------------------------
# 11.1 The FLOPs that padding wastes


def _flops(seqs: Sequence[int], n_params: float, num_layers: int, hidden_size: int,
           linear: float = 6.0, attention: float = 12.0) -> float:
    """`linear * N * t + attention * L * d * t**2` summed over sequences of `seqs` positions."""
    return sum(linear * n_params * t + attention * num_layers * hidden_size * t * t for t in seqs)


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Consecutive batches of `batch_size` lengths; the last one may be shorter."""
    return [list(lengths[i:i + batch_size]) for i in range(0, len(lengths), batch_size)]


def _dynamic(batches: list[list[int]]) -> list[int]:
    """The sequence lengths dynamic padding computes: each sentence at its batch's longest."""
    return [max(batch) for batch in batches for _ in batch]


def _layouts(lengths: Sequence[int], batch_size: int, max_length: int) -> dict[str, list[int]]:
    """The length of every sequence each layout computes (a padded sentence at its padded length)."""
    return {"padded": [max_length] * len(lengths),
            "dynamic": _dynamic(_batches(lengths, batch_size)),
            "packed": list(lengths)}


def _near(answer: float, expected: float) -> bool:
    return math.isclose(answer, expected, rel_tol=RTOL)


def _usual_mistakes(lengths: Sequence[int], batch_size: int, max_length: int,
                    model: tuple[float, int, int]) -> dict[str, list[tuple[float, str]]]:
    """For each layout, (a wrong total, the sentence that names the mistake) pairs."""
    n, L, d = model
    total = sum(lengths)
    full = len(lengths) - len(lengths) % batch_size
    rows = [max_length] * (total // max_length) + ([total % max_length] if total % max_length else [])
    concat = 6.0 * n * total
    return {
        "padded": [(_flops([max(lengths)] * len(lengths), n, L, d),
                    '"padded" pads every sentence to the longest of the data set; the naive loop pads '
                    "them all to max_length.")],
        "dynamic": [
            (_flops([max(lengths)] * len(lengths), n, L, d),
             '"dynamic" pads every batch to the longest sentence of the whole data set; each batch '
             "is padded only to its own longest sentence."),
            (_flops(_dynamic(_batches(lengths[:full], batch_size)), n, L, d),
             '"dynamic" drops the last, shorter batch: when len(lengths) is not a multiple of '
             "batch_size, the leftover sentences still form one more batch."),
            (_flops(_dynamic(_batches(sorted(lengths), batch_size)), n, L, d),
             '"dynamic" sorts the sentences by length first (that is bucketing); batch them in '
             "the order given."),
        ],
        "packed": [
            (concat + 12.0 * L * d * total ** 2,
             '"packed" lets attention run over the whole concatenation (its total length squared); '
             "in a packed row each sentence attends only to itself, so use each sentence's own t**2."),
            (concat + 12.0 * L * d * sum(r * r for r in rows),
             '"packed" lets attention run over whole rows of max_length (a row\'s length squared); '
             "in a packed row each sentence attends only to itself, so use each sentence's own t**2."),
            (_flops([max_length] * len(rows), n, L, d),
             '"packed" counts full rows of max_length, padding and attention across sentences '
             "included; count only the real tokens, each sentence with its own t**2."),
        ],
    }


def _check_costs(padding_costs: Callable[..., Any], lengths: list[int], batch_size: int,
                 max_length: int, model: tuple[float, int, int], what: str) -> None:
    n, L, d = model
    answer = padding_costs(list(lengths), batch_size, max_length, n, L, d)
    if not isinstance(answer, Mapping):
        raise base.CheckFailed("11.1", f"return a dict with the keys {list(LAYOUTS)}, got "
                               f"{type(answer).__name__}.")
    if set(answer) != set(LAYOUTS):
        raise base.CheckFailed("11.1", f"the dict's keys must be exactly {list(LAYOUTS)}, got {sorted(answer)}.")
    seqs = _layouts(lengths, batch_size, max_length)
    mistakes = _usual_mistakes(lengths, batch_size, max_length, model)
    for key in LAYOUTS:
        value = answer[key]
        if not base.is_finite_number(value):
            raise base.CheckFailed("11.1", f'"{key}" must be a number of FLOPs, got {value!r}.')
        value, expected = float(value), _flops(seqs[key], n, L, d)
        if _near(value, expected):
            continue
        if _near(value, expected / 3) or _near(value, _flops(seqs[key], n, L, d, 2.0, 0.0)):
            raise base.CheckFailed("11.1", f'"{key}" is a third of the training FLOPs: that is the forward '
                                   "pass only; the backward pass costs twice the forward, hence 6N and 12Ld.")
        if _near(value, _flops(seqs[key], n, L, d, attention=0.0)):
            raise base.CheckFailed("11.1", f'"{key}" has no attention term: add 12 * L * d * t**2 for '
                                   "every sequence of t positions.")
        for wrong, message in mistakes[key]:
            if _near(value, wrong):
                raise base.CheckFailed("11.1", message)
        base.close("11.1", value, expected, rtol=RTOL, what=f'{what}: "{key}"')


@base.register("11.1", "the FLOPs that padding wastes", "padding_costs")
def _padding_costs(padding_costs: Callable[..., Any]) -> None:
    _check_costs(padding_costs, [5, 9, 3, 12, 4, 7, 6], 3, 16, (1e6, 2, 64),
                 what="lengths [5, 9, 3, 12, 4, 7, 6], batch_size 3, max_length 16, N=1e6, L=2, d=64")
    long_tail = [12, 9, 15, 11, 64, 10, 13, 8, 14, 17, 9, 11, 96,
                 12, 10, 16, 13, 9, 41, 11, 14, 12, 18, 10, 110, 13]  # 26 sentences: 3 batches of 8, then 2
    _check_costs(padding_costs, long_tail, 8, 128, (10.6e6, 6, 384),
                 what="MiniLM-sized (N=10.6M, L=6, d=384), 26 long-tail lengths, batch_size 8, max_length 128")


# ---------------------------------------------------------------------------------------
# 11.2 Offsets for the variable-length kernel


BATCHES = (
    [[1, 1, 2, 2, 2, 0], [1, 1, 1, 1, 2, 2]],  # the example of the exercise: row 1 has no padding
    [[1, 1, 1, 1, 1, 1, 1], [1, 1, 2, 2, 2, 0, 0], [1, 2, 3, 4, 5, 0, 0]],  # one sentence; one-token ones
    [[1, 1, 2, 2, 2, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 0], [0] * 8],  # an empty last row: the longest run
)


def _reference(batch: list[list[int]]) -> tuple[list[int], int]:
    """`varlen_offsets` on a batch: its offsets as a list, and the longest run."""
    cu_seqlens, max_len = varlen_offsets(torch.tensor(batch))
    return cu_seqlens.tolist(), max_len


def _begins(batch: list[list[int]], across_rows: bool = False, padding: bool = True) -> list[int]:
    """The flat indices where runs begin; `across_rows`: a run goes on into the next row when
    its first token carries the same number; `padding=False`: the padding begins no run."""
    T = len(batch[0])
    flat = [k for row in batch for k in row]
    return [i for i, k in enumerate(flat)
            if (padding or k) and (i == 0 or k != flat[i - 1] or (i % T == 0 and not across_rows))]


def _runs(batch: list[list[int]]) -> list[tuple[int, int]]:
    """(number, length) of each run, in flat order (number 0: a stretch of padding)."""
    cu = [*_begins(batch), len(batch) * len(batch[0])]
    flat = [k for row in batch for k in row]
    return [(flat[a], b - a) for a, b in itertools.pairwise(cu)]


def _offset_mistakes(batch: list[list[int]]) -> list[tuple[list[int], str]]:
    """(wrong cu_seqlens, the sentence that names the mistake) pairs for one batch."""
    n = len(batch) * len(batch[0])
    sentences = [length for k, length in _runs(batch) if k]
    return [
        (_begins(batch), f"cu_seqlens lacks its last entry, B*T = {n}: R runs need R + 1 offsets, the last "
                         "one where the final run ends."),
        ([*_begins(batch, across_rows=True), n],
         "a run goes on into the next row when that row starts with the same number; every row's token 0 "
         "begins a new run, whatever number it carries."),
        ([*_begins(batch, padding=False), n],
         "the stretches of padding have no offsets, so each joins the sentence before it; padding is a run "
         "of its own and begins at its own offset."),
        (list(itertools.accumulate(sentences, initial=0)),
         "those are the cumulative lengths of the sentences alone, as if the padding had been removed; here "
         "the padding stays in the flat sequence of B*T tokens, each stretch a run of its own."),
    ]


def _max_len_mistakes(batch: list[list[int]]) -> list[tuple[int, str]]:
    """(wrong max_len, the sentence that names the mistake) pairs for one batch."""
    runs = _runs(batch)
    return [
        (len(runs), "max_len is the number of runs; it is the length of the longest run, the largest gap "
                    "between two consecutive offsets."),
        (max(length for k, length in runs if k),
         "max_len is the longest sentence; a stretch of padding is a run too, and here it is the longest."),
    ]


def _as_offsets(x: Any, where: str) -> list[int]:
    try:
        return [int(v) for v in x]
    except (TypeError, ValueError, RuntimeError):
        raise base.CheckFailed("11.2", f"{where}: cu_seqlens must be a flat list of ints, got "
                               f"{type(x).__name__}.") from None


@base.register("11.2", "offsets for the variable-length kernel", "varlen_offsets_by_hand")
def _varlen_offsets_by_hand(varlen_offsets_by_hand: Callable[..., Any]) -> None:
    for batch in BATCHES:
        expected_cu, expected_max = _reference(batch)
        answer = varlen_offsets_by_hand([list(row) for row in batch])
        where = f"varlen_offsets_by_hand({batch})"
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise base.CheckFailed("11.2", f"{where}: return a pair (cu_seqlens, max_len).")
        cu_seqlens, max_len = _as_offsets(answer[0], where), answer[1]
        if cu_seqlens != expected_cu:
            if any(b < a for a, b in itertools.pairwise(cu_seqlens)):
                raise base.CheckFailed("11.2", f"{where}: the offsets restart in every row; they are flat indices "
                                       "into the B*T tokens, row r's token t at r*T + t.")
            for wrong, message in _offset_mistakes(batch):
                if cu_seqlens == wrong:
                    raise base.CheckFailed("11.2", f"{where}: {message}")
        base.equal("11.2", cu_seqlens, expected_cu, what=f"{where}, cu_seqlens")
        if isinstance(max_len, (str, bool)) or not base.is_finite_number(max_len) or float(max_len) % 1:
            raise base.CheckFailed("11.2", f"{where}: max_len must be an int, got {max_len!r}.")
        if int(max_len) != expected_max:
            for wrong, message in _max_len_mistakes(batch):
                if int(max_len) == wrong:
                    raise base.CheckFailed("11.2", f"{where}: {message}")
        base.equal("11.2", int(max_len), expected_max, what=f"{where}, max_len")
