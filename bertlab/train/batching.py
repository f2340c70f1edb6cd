"""Batches with little padding: length bucketing with a seeded order, dynamic padding.

Derived in notebook 11. Padding every batch to `max_length` makes a 12-token sentence cost
as much as a 128-token one. Two fixes, used together:

- **dynamic padding** (`bertlab.data.Collator`): pad each batch only to its longest member;
- **length bucketing** (`BucketBatchSampler`): put sentences of similar length in the same
  batch, so that the longest member is not much longer than the rest.

Bucketing has a price. Sentences of one length are often sentences of one kind (in the
bundled reviews, contrast sentences are the long ones), so a batch sorted out of a large pool
holds more sentences of one kind, and its gradient stands for less of the data. Sorting small pools (4 batches by
default) keeps most of the saving: on 1,024 bundled reviews in batches of 16, padding falls
from 31% of the positions (a plain shuffle) to 12% (2% with pools of 50 batches). The share
of a batch that comes from its most common kind of sentence rises with any sorting, from
about 42% to about 60%, and hardly more with pools of 50 (notebook 11, section 8.1, prints
both). So on the bundled reviews the default of 4 is caution for data whose lengths and
kinds go together more strongly, not a measured gain; no accuracy measured here favours
either pool size (a few seeds of a short run differ by more than that).

The order is drawn from a `torch.Generator` seeded with ``seed + epoch``, never from the
global random state, so a run that resumes mid-epoch sees the same batches, and every
process of a distributed run agrees on them (each takes every `world_size`-th batch, like
`DistributedSampler`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch


def token_lengths(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[int]:
    """Number of tokens of each text, [CLS] and [SEP] included, after truncation to `max_length`."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return [len(x) for x in ids]


class BucketBatchSampler:
    """Yields lists of example indices, one list per optimizer step, for one process.

    Each epoch: shuffle all indices; cut them into pools of `pool` batches; sort each pool
    by length; cut the pool into batches of `batch_size`; shuffle the batches. Without
    bucketing the pools are left unsorted (a plain shuffled order). Every process gets the
    same number of batches (the list is padded by repeating its first batches).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        bucketing: bool = True,
        rank: int = 0,
        world_size: int = 1,
        pool: int = 4,
    ):
        if not lengths:
            raise ValueError("BucketBatchSampler needs at least one example.")
        self.lengths = torch.as_tensor(list(lengths))
        self.batch_size = batch_size
        self.seed = seed
        self.bucketing = bucketing
        self.rank = rank
        self.world_size = world_size
        self.pool = pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order `__iter__` yields (as with DistributedSampler)."""
        self.epoch = epoch

    def all_batches(self, epoch: int) -> list[list[int]]:
        """The batches of every process for `epoch`, in order (same on every process)."""
        gen = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(len(self.lengths), generator=gen)
        if self.bucketing:
            pool_size = self.batch_size * self.pool
            pools = [order[i : i + pool_size] for i in range(0, len(order), pool_size)]
            # stable sort keeps the shuffled order among equal lengths
            order = torch.cat([p[torch.sort(self.lengths[p], stable=True).indices] for p in pools])
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        shuffle = torch.randperm(len(batches), generator=gen).tolist()
        batches = [batches[i] for i in shuffle]
        short = -len(batches) % self.world_size
        return batches + batches[:short]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.all_batches(self.epoch)
        return iter(batches[self.rank :: self.world_size])

    def __len__(self) -> int:
        n_batches = -(-len(self.lengths) // self.batch_size)
        return -(-n_batches // self.world_size)


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]], pad_to: int = 0) -> float:
    """Fraction of the batch tensors' positions that are padding.

    `pad_to` = 0 pads each batch to its longest member (dynamic padding); otherwise every
    batch is padded to `pad_to` tokens, as the naive loop does.
    """
    real = padded = 0
    for batch in batches:
        lens = [lengths[i] for i in batch]
        real += sum(lens)
        padded += len(lens) * (pad_to or max(lens))
    return 1.0 - real / padded


def split(batch: list[Any], micro_batch_size: int) -> list[list[Any]]:
    """Cut one optimizer step's examples into micro-batches of at most `micro_batch_size`."""
    return [batch[i : i + micro_batch_size] for i in range(0, len(batch), micro_batch_size)]
