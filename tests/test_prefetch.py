"""The next step's batches, made on a thread (`bertlab.train.prefetch`), change nothing but when."""

from __future__ import annotations

import threading

import pytest

from bertlab.train import loop, prefetch
from bertlab.train.config import TrainConfig
from bertlab.train.prefetch import Prefetcher


def test_batches_asked_for_are_made_ahead_on_another_thread():
    threads = []

    def make(examples, micro):
        threads.append(threading.current_thread().name)
        return [list(examples[i : i + micro]) for i in range(0, len(examples), micro)]

    ahead = Prefetcher(make, enabled=True)
    step = ["a", "b", "c"]
    ahead.start(step, 2)
    assert ahead.get(step, 2) == [["a", "b"], ["c"]] and ahead.hits == 1
    assert threads == ["bertlab-prefetch_0"]
    ahead.start(step, 2)
    assert ahead.get(step, 1) == [["a"], ["b"], ["c"]] and ahead.hits == 1  # halved micro-batch: made again
    assert ahead.get(["d"], 1) == [["d"]] and threads[-1] == threading.current_thread().name  # not asked: made now
    ahead.close()
    off = Prefetcher(make, enabled=False)
    off.start(step, 3)
    assert off.ahead is None and off.get(step, 3) == [step] and off.hits == 0


def test_an_error_while_making_ahead_surfaces_on_the_step_that_needs_the_batches():
    def make(examples, micro):
        raise ValueError("a bad example")

    ahead = Prefetcher(make, enabled=True)
    ahead.start(["x"], 1)
    ahead.wait()  # waits, does not raise
    with pytest.raises(ValueError, match="a bad example"):
        ahead.get(["x"], 1)
    ahead.close()


@pytest.mark.parametrize("packing", [False, True])
def test_fit_with_batches_made_ahead_trains_the_same_steps(tiny, reviews, monkeypatch, packing):
    """Prefetching is on for CUDA only; turned on for the CPU here, the losses are the same
    numbers and every step after the first found its batches ready."""
    from bertlab.train import fit, setup

    made = []
    monkeypatch.setattr(loop, "Prefetcher", lambda *a, **k: made.append(prefetch.Prefetcher(*a, **k)) or made[-1])
    cfg = TrainConfig(model=tiny, dataset="reviews", max_train_examples=48, max_eval_examples=16, batch_size=8,
                      num_epochs=1, eval_every=3, packing=packing, bucketing=not packing, max_length=48, device="cpu")
    histories = []
    for on in ((), ("cpu",)):
        monkeypatch.setattr(loop, "PREFETCH_ON", on)
        result = fit(*setup(cfg), cfg, progress=False)
        histories.append([round(h["loss"], 6) for h in result.history])
    assert histories[0] == histories[1] and len(histories[0]) == 6
    assert made[0].hits == 0 and made[1].hits == 5
