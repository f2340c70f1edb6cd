"""A packed step given its layout (`bertlab.layout`) is one graph of static shapes.

The same numbers as the mask-only path (which reads the layout from the mask's values),
no graph break under torch.compile(fullgraph=True), and no recompilation from one step to
the next when only the sentences change: what CUDA graphs need.
"""

import pytest
import torch

from bertlab.attention import varlen_offsets
from bertlab.errors import ParameterError
from bertlab.layout import layout_of, slot_labels
from bertlab.train.packing import pack
from tests.test_packing import TINY, loss_and_grads, max_diff, sentences, tiny_model


def packed_step(lengths, seed=0, slots=None, row_tokens=24, rows=4):
    """A packed step of `lengths` and its layout with `slots` slots (default: 3 more than needed)."""
    ids, types, labels = sentences(lengths, seed)
    (batch,) = pack(ids, types, labels, row_tokens=row_tokens, rows=rows)
    return batch, layout_of(batch.attention_mask, slots or len(lengths) + 3)


def test_the_layout_gives_the_mask_paths_logits_loss_and_gradients():
    model = tiny_model("sdpa")
    batch, layout = packed_step([7, 12, 5, 9, 3, 14, 6, 8])
    want, want_grads = loss_and_grads(model, batch.model_inputs())
    out, grads = loss_and_grads(model, {**batch.model_inputs(), "packed": layout})
    n = len(batch.labels)
    assert out.logits.shape == (n + 3, TINY.num_labels)  # S slots, the first N the sentences
    assert layout.sentences.tolist() == [True] * n + [False] * 3
    assert max_diff(out.logits[:n], want.logits) < 1e-6
    assert abs(out.loss.item() - want.loss.item()) < 1e-6  # the first N rows, for labels (N,)
    slotted = model(**{**batch.model_inputs(), "labels": slot_labels(batch.labels, n + 3)}, packed=layout)
    assert abs(slotted.loss.item() - want.loss.item()) < 1e-6  # labels (S,): the empty slots are ignored
    for name, g in grads.items():
        assert max_diff(g, want_grads[name]) < 1e-6, name


def test_cu_seqlens_are_the_mask_offsets_then_empty_runs():
    batch, layout = packed_step([7, 12, 5, 9, 3])
    offsets, _ = varlen_offsets(batch.attention_mask)
    B, T = batch.attention_mask.shape
    assert layout.cu_seqlens.shape == (B * T + 1,)  # the same for every step of (B, T)
    assert torch.equal(layout.cu_seqlens[: len(offsets)], offsets)
    assert (layout.cu_seqlens[len(offsets):] == B * T).all()


def test_too_few_slots_is_one_sentence():
    ids, types, labels = sentences([7, 12, 5])
    (batch,) = pack(ids, types, labels, row_tokens=24, rows=2)
    with pytest.raises(ParameterError, match="holds 3 sentences but its layout has 2 slots"):
        layout_of(batch.attention_mask, 2)


def test_a_packed_training_step_is_one_graph_and_compiles_once():
    """explain finds no break reason; fullgraph=True compiles it; a second step of the same
    shape with other sentences (another count, other lengths) reuses the graph."""
    model = tiny_model("sdpa").train()

    def loss_of(inputs, layout):
        return model(**inputs, packed=layout).loss

    def step(lengths, seed):  # labels (S,), -100 in the empty slots: no shape depends on N
        batch, layout = packed_step(lengths, seed, slots=10)
        return batch, {**batch.model_inputs(), "labels": slot_labels(batch.labels, 10)}, layout

    batch, inputs, layout = step([7, 12, 5, 9, 3, 14, 6, 8], 0)
    explained = torch._dynamo.explain(loss_of)(inputs, layout)
    assert explained.graph_break_count == 0 and not explained.break_reasons, explained.break_reasons
    assert explained.graph_count == 1
    torch._dynamo.reset()
    compiled = torch.compile(loss_of, fullgraph=True, backend="eager", dynamic=False)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for batch, inputs, layout in (step([7, 12, 5, 9, 3, 14, 6, 8], 0), step([20, 4, 4, 11, 6], 3)):
            torch.manual_seed(0)
            got = compiled(inputs, layout)
            torch.manual_seed(0)
            want = model(**batch.model_inputs()).loss  # the mask-only path
            assert abs(got.item() - want.item()) < 1e-5
    got.backward()  # backward runs outside the compiled region
    assert all(p.grad is not None for p in model.parameters())
    torch._dynamo.reset()
