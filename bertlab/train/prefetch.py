"""The next step's batches, made while this step runs: collated and pinned on a thread.

Derived for notebook 11's fast loop. A GPU copies a batch from host memory asynchronously
only from page-locked ("pinned") memory, and pinning takes time of its own. Done just before
the copy, both sit on the step's critical path; done for step n + 1 while step n runs on the
GPU, neither does. One background thread is enough: tokenizing and pinning a micro-batch
takes milliseconds, against a step's tens of milliseconds or more.

`fit` turns it on for CUDA only. On a CPU there is nothing to pin, and the step already has
every core busy: a thread tokenizing beside it would only take cores from it.

A step's batches are asked for by its examples and micro-batch size: when the micro-batch
halves after an out-of-memory error, the batches made ahead no longer fit and are made again.
`wait` lets the thread finish before anything else uses the tokenizer (an evaluation): a
fast tokenizer must not be used by two threads at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

Batches = list[dict[str, Any]]


class Prefetcher:
    """`make(examples, micro_batch_size)` for the next step on a thread, `get` it for this one."""

    def __init__(self, make: Callable[[Sequence[Any], int], Batches], enabled: bool):
        self.make = make
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertlab-prefetch") if enabled else None
        self.ahead: tuple[tuple[int, ...], int, Future] | None = None
        self.hits = 0  # steps whose batches were ready-made (tests and notebook 11 read it)

    @staticmethod
    def key(examples: Sequence[Any]) -> tuple[int, ...]:
        return tuple(id(ex) for ex in examples)

    def start(self, examples: Sequence[Any], micro_batch_size: int) -> None:
        """Begin making the batches of `examples` (the next step's) on the thread."""
        if self.pool is not None:
            self.wait()
            self.ahead = (self.key(examples), micro_batch_size, self.pool.submit(self.make, examples, micro_batch_size))

    def get(self, examples: Sequence[Any], micro_batch_size: int) -> Batches:
        """The batches of `examples`: made ahead when they were asked for, else made now."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None and ahead[:2] == (self.key(examples), micro_batch_size):
            self.hits += 1
            return ahead[2].result()
        if ahead is not None:
            ahead[2].result()  # let it finish (it holds the tokenizer), then make the right ones
        return self.make(examples, micro_batch_size)

    def wait(self) -> None:
        """Let the batches being made finish (they are kept for `get`)."""
        if self.ahead is not None:
            self.ahead[2].exception()  # waits; an error surfaces in `get`, on the step that needs it

    def close(self) -> None:
        self.ahead = None
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
