"""Exercises of notebook 09 (pretraining).

09.1 the MLM loss: mean -log p over the masked positions only;
09.2 BERT's 80/10/10 rule: what a picked token becomes;
09.3 the NSP loss from BERT's two logits, as one binary cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.exercises import base


@base.register("09.1", "the MLM loss over masked positions only", "masked_lm_loss")
def check_masked_lm_loss(masked_lm_loss) -> None:
    g = torch.Generator().manual_seed(9)
    for B, T, V, share in [(2, 5, 7, 0.4), (3, 8, 11, 0.15), (1, 4, 5, 1.0)]:
        logits = torch.randn(B, T, V, generator=g)
        labels = torch.randint(V, (B, T), generator=g)
        labels[torch.rand(B, T, generator=g) >= share] = -100
        labels[0, 0] = 2  # at least one masked position
        expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        base.close("09.1", masked_lm_loss(logits, labels), expected, atol=1e-5,
                    what=f"loss for logits {(B, T, V)} with {int((labels != -100).sum())} masked")


@base.register("09.2", "BERT's 80/10/10 replacement rule", "replace_picked")
def check_replace_picked(replace_picked) -> None:
    input_ids = torch.tensor([[101, 7, 8, 9, 10, 11, 102, 0]])
    picked = torch.tensor([[False, True, True, True, False, True, False, False]])
    u = torch.tensor([[0.5, 0.10, 0.85, 0.95, 0.2, 0.79, 0.1, 0.1]])
    random_ids = torch.tensor([[40, 41, 42, 43, 44, 45, 46, 47]])
    expected = torch.tensor([[101, 103, 42, 9, 10, 103, 102, 0]])
    got = replace_picked(input_ids, picked, u, random_ids, 103)
    base.equal("09.2", torch.as_tensor(got).tolist(), expected.tolist(),
                what="inputs (u < 0.8: [MASK]=103; 0.8 <= u < 0.9: random id; else kept)")
    base.equal("09.2", input_ids.tolist(), [[101, 7, 8, 9, 10, 11, 102, 0]],
                what="input_ids after the call (do not change it in place)")


@base.register("09.3", "the NSP loss as a binary cross-entropy", "nsp_binary_loss")
def check_nsp_binary_loss(nsp_binary_loss) -> None:
    g = torch.Generator().manual_seed(3)
    for n in (1, 4, 9):
        logits = torch.randn(n, 2, generator=g) * 3  # columns: (is next, random)
        is_next = torch.randint(2, (n,), generator=g)
        labels = 1 - is_next  # the two-class view: class 0 = "is next"
        expected = F.cross_entropy(logits, labels)
        base.close("09.3", nsp_binary_loss(logits, is_next), expected, atol=1e-5,
                    what=f"loss for {n} pairs")
