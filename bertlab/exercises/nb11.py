"""Checks for notebook 11 (fast fine-tuning): the training FLOPs formula, the no-decay groups."""

from __future__ import annotations

import torch

from bertlab.exercises import base


def _reference_flops(n_params: int, num_layers: int, hidden_size: int, lengths: list[int]) -> float:
    return 6.0 * n_params * sum(lengths) + 12.0 * num_layers * hidden_size * sum(t * t for t in lengths)


@base.register("11.1", "training FLOPs of a batch", "training_flops")
def _training_flops(training_flops) -> None:
    one = training_flops(1_000_000, 2, 64, [10])
    if abs(one - 6e6 * 10) < 1 and one != _reference_flops(1_000_000, 2, 64, [10]):
        raise base.CheckFailed("11.1", "the attention term is missing: add 12 * L * d * t**2 per sequence.")
    if abs(one - 2e6 * 10 - 4 * 2 * 64 * 100) < 1:
        raise base.CheckFailed("11.1", "that is the forward pass only; training (forward + backward) costs 3 times as much.")
    base.close("11.1", one, _reference_flops(1_000_000, 2, 64, [10]), what="N=1e6, L=2, d=64, one sequence of 10 tokens")
    lengths = [12, 7, 30, 128]
    base.close("11.1", training_flops(21_300_000, 6, 384, lengths),
                _reference_flops(21_300_000, 6, 384, lengths),
                what="MiniLM-sized (N=21.3M, L=6, d=384), lengths [12, 7, 30, 128] "
                     "(each sequence's attention grows with its own length squared)")


def _tiny_bert() -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    return BertForSequenceClassification(config)


@base.register("11.2", "AdamW groups without decay for biases and LayerNorm", "decay_groups")
def _decay_groups(decay_groups) -> None:
    model = _tiny_bert()
    named = list(model.named_parameters())
    decay, no_decay = decay_groups(named)
    decay, no_decay = sorted(decay), sorted(no_decay)
    expected_decay = sorted(n for n, p in named if p.ndim >= 2)
    expected_no = sorted(n for n, p in named if p.ndim < 2)
    both = set(decay) & set(no_decay)
    if both:
        raise base.CheckFailed("11.2", f"{sorted(both)[0]} is in both groups; each parameter belongs to one.")
    missing = sorted({n for n, _ in named} - set(decay) - set(no_decay))
    if missing:
        raise base.CheckFailed("11.2", f"{missing[0]} is in neither group ({len(missing)} missing).")
    wrong = sorted(set(no_decay) - set(expected_no))
    if wrong:
        raise base.CheckFailed("11.2", f"{wrong[0]} is a weight matrix: it should decay.")
    forgotten = sorted(set(expected_no) - set(no_decay))
    if forgotten:
        raise base.CheckFailed("11.2", f"{forgotten[0]} (and {len(forgotten) - 1} more) should not decay: "
                                "biases and LayerNorm weights are 1-D.")
    base.equal("11.2", no_decay, expected_no, what="the parameters without weight decay")
    base.equal("11.2", decay, expected_decay, what="the parameters with weight decay")
