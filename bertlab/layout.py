"""A packed step's layout, computed before the step: one graph, static shapes, no host sync.

Derived in notebook 11. The model can read a packed batch from its attention mask alone
(`bertlab.attention.packed_layout`), but finding each sentence's [CLS] takes a `nonzero`,
whose output length depends on the mask's values, and telling a packed mask from a padded
one takes a look at those values: on a GPU both wait for the device (a host sync), and
under torch.compile both split the forward into several graphs. CUDA graphs
(``mode="reduce-overhead"``) need one graph whose every shape is known before the step.

The collator knows the layout anyway (it laid the sentences out), so it computes it on the
host, where reading values costs nothing, and hands it over as a `PackedLayout`:

    model(input_ids, token_type_ids, attention_mask, packed=layout)

**The contract.** A packed step of B rows of T tokens has `slots` sentence slots, S, a number
fixed for the run (`fit` uses the batch size: every step holds that many sentences, the
last one perhaps fewer). The step's N <= S sentences fill the first N slots, row by row,
then by k; the rest are empty. The classifier's logits are (S, num_labels): rows N.. are
empty slots, whose values mean nothing (`layout.sentences` marks the real ones). Labels
are (S,) too, `IGNORE_INDEX` (-100, cross-entropy's default ignore_index) in the empty
slots, so the loss is the mean over the N sentences with no slicing by N; labels (N,) are
also taken (the first N rows are scored), at the price of one graph per N. Every tensor's
shape then depends only on (B, T, S), so one compiled graph serves every step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from bertlab.attention import packed_layout, varlen_offsets
from bertlab.errors import ParameterError

IGNORE_INDEX = -100  # the label of an empty slot: F.cross_entropy skips it

@dataclass
class PackedLayout:
    """What the forward of a packed step needs, besides the mask (shapes: B rows, T tokens, S slots)."""

    positions: torch.Tensor  # (B, T): each token's position in its own sentence, 0 at its [CLS]
    cls_index: torch.Tensor  # (S,): flat index r * T + t of each sentence's [CLS]; 0 in an empty slot
    sentences: torch.Tensor  # (S,) bool: True in the first N slots, which hold the step's sentences
    cu_seqlens: torch.Tensor  # (B * T + 1,) int32: run offsets for varlen, the last repeated (empty runs)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PackedLayout:
        """The same layout on `device` (`bertlab.train.step.to_device` moves it with the batch)."""
        return PackedLayout(*(getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)))

    def pin_memory(self) -> PackedLayout:
        """The same layout in page-locked host memory, for an asynchronous copy to a GPU."""
        return PackedLayout(*(getattr(self, f.name).pin_memory() for f in fields(self)))


def layout_of(attention_mask: torch.Tensor, slots: int) -> PackedLayout:
    """The `PackedLayout` of a packed (B, T) mask (k = k-th sentence of the row, 0 = padding),
    with `slots` sentence slots; computed on the host, before the step (it reads the mask)."""
    B, T = attention_mask.shape
    positions, _, starts = packed_layout(attention_mask)  # (B, T), block mask (unused), (N, 2)
    n = len(starts)
    if n > slots:
        raise ParameterError(f"This packed step holds {n} sentences but its layout has {slots} slots; "
                             "give at least as many slots as the step has sentences.")
    cls_index = torch.zeros(slots, dtype=torch.long)  # (S,)
    cls_index[:n] = starts[:, 0] * T + starts[:, 1]
    offsets, _ = varlen_offsets(attention_mask)  # (R + 1,), R <= B * T runs
    cu_seqlens = torch.full((B * T + 1,), B * T, dtype=torch.int32)  # (B * T + 1,): one shape for every step
    cu_seqlens[: len(offsets)] = offsets
    return PackedLayout(positions, cls_index, torch.arange(slots) < n, cu_seqlens)


def slot_labels(labels: torch.Tensor, slots: int) -> torch.Tensor:
    """(N,) labels -> (S,): `IGNORE_INDEX` in the empty slots N.. (see the module doc)."""
    out = torch.full((slots,), IGNORE_INDEX, dtype=labels.dtype)
    out[: len(labels)] = labels
    return out
