"""Exercises of notebook 09 (pretraining).

09.1 the MLM loss: mean -log p over the masked positions only;
09.2 BERT's 80/10/10 rule: what a picked token becomes;
09.3 ALBERT's sentence-order pairs: neighbours in order or swapped;
09.4 whole-word masking: every piece of a picked word.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bertlab.exercises import base
from bertlab.tokenization import WordPieceTokenizer


@base.register("09.1", "the MLM loss over masked positions only", "masked_lm_loss")
def check_masked_lm_loss(masked_lm_loss) -> None:
    g = torch.Generator().manual_seed(9)
    for B, T, V, share in [(2, 5, 7, 0.4), (3, 8, 11, 0.15), (1, 4, 5, 1.0)]:
        logits = torch.randn(B, T, V, generator=g)
        labels = torch.randint(V, (B, T), generator=g)
        labels[torch.rand(B, T, generator=g) >= share] = -100
        labels[0, 0] = 2  # at least one masked position
        expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        answer = masked_lm_loss(logits.clone(), labels.clone())
        picked = labels != -100
        if base.is_finite_number(answer) and not picked.all():
            per_position = -torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
            if abs(float(answer) - float((per_position * picked).sum() / picked.numel())) < 1e-5:
                raise base.CheckFailed(
                    "09.1", "you divided by all B * T positions; the mean runs over the masked "
                    "positions only (labels != -100).")
        base.close("09.1", answer, expected, atol=1e-5,
                   what=f"loss for logits {(B, T, V)} with {int(picked.sum())} masked")


@base.register("09.2", "BERT's 80/10/10 replacement rule", "replace_picked")
def check_replace_picked(replace_picked) -> None:
    input_ids = torch.tensor([[101, 7, 8, 9, 10, 11, 102, 0]])
    picked = torch.tensor([[False, True, True, True, False, True, False, False]])
    u = torch.tensor([[0.5, 0.10, 0.85, 0.95, 0.2, 0.79, 0.1, 0.1]])
    random_ids = torch.tensor([[40, 41, 42, 43, 44, 45, 46, 47]])
    expected = torch.tensor([[101, 103, 42, 9, 10, 103, 102, 0]])
    got = torch.as_tensor(replace_picked(input_ids.clone(), picked, u, random_ids, 103))
    if got.shape == expected.shape and got[0, 0] == 103:
        raise base.CheckFailed("09.2", "an unpicked position (the [CLS] at 0) was replaced: apply the "
                               "rule only where `picked` is True.")
    if got.shape == expected.shape and got[0, 3] == 43:
        raise base.CheckFailed("09.2", "the token with u = 0.95 got a random id: only "
                               "0.8 <= u < 0.9 does; u >= 0.9 keeps the token.")
    base.equal("09.2", got.tolist(), expected.tolist(),
               what="inputs (u < 0.8: [MASK]=103; 0.8 <= u < 0.9: random id; else kept)")
    original = torch.tensor([[101, 7, 8, 9, 10, 11, 102, 0]])
    replace_picked(original, picked, u, random_ids, 103)
    base.equal("09.2", original.tolist(), [[101, 7, 8, 9, 10, 11, 102, 0]],
               what="input_ids after the call (do not change it in place)")


@base.register("09.3", "ALBERT's sentence-order pairs", "sentence_order_pairs")
def check_sentence_order_pairs(sentence_order_pairs) -> None:
    doc = ["tina is a painter.", "she went to the studio.", "she painted a mural.", "then she went home."]
    for swap in ([False, True, False], [True, True, True], [False, False, False]):
        expected = [(b, a, 0) if s else (a, b, 1) for a, b, s in zip(doc, doc[1:], swap)]
        answer = sentence_order_pairs(list(doc), list(swap))
        answer = [tuple(t) for t in answer] if isinstance(answer, list | tuple) else answer
        if not isinstance(answer, list):
            raise base.CheckFailed("09.3", "return a list of (a, b, in_order) triples.")
        if answer == [(a, b, 1 - y) for a, b, y in expected] and expected:
            raise base.CheckFailed("09.3", "the labels are the wrong way round: in_order is 1 when the "
                                   "pair keeps the document's order and 0 when it is swapped.")
        if len(answer) == len(doc) // 2 and len(expected) != len(answer):
            raise base.CheckFailed("09.3", f"you made {len(answer)} pairs of disjoint sentences; pair i "
                                   "is sentences i and i + 1, so a document of 4 sentences gives 3 pairs.")
        if answer == [(a, b, 1) for a, b in zip(doc, doc[1:])] and any(swap):
            raise base.CheckFailed("09.3", "no pair was swapped: where swap[i] is True, the pair is "
                                   "(doc[i + 1], doc[i], 0).")
        base.equal("09.3", answer, expected, what=f"sentence_order_pairs(4 sentences, swap={swap})")


@base.register("09.4", "whole-word masking", "whole_word_picks")
def check_whole_word_picks(whole_word_picks) -> None:
    tok = WordPieceTokenizer.from_pretrained("minilm")
    cases = [("the hippopotamus was unaffable.", {1}), ("the hippopotamus was unaffable.", {3, 0}),
             ("tokenization is fun", {0, 2}), ("a b", set())]
    for text, words in cases:
        tokens = ["[CLS]", *tok.tokenize(text), "[SEP]", "[PAD]", "[PAD]"]
        expected, word = [], -1
        for t in tokens:
            if t in ("[CLS]", "[SEP]", "[PAD]"):
                expected.append(False)
                continue
            word += not t.startswith("##")
            expected.append(word in words)
        answer = [bool(x) for x in whole_word_picks(list(tokens), set(words))]
        where = f"whole_word_picks({tokens}, {sorted(words)})"
        if len(answer) != len(tokens):
            raise base.CheckFailed("09.4", f"{where}: return one boolean per token ({len(tokens)}), "
                                   f"not {len(answer)}.")
        if any(a and t in ("[CLS]", "[SEP]", "[PAD]") for a, t in zip(answer, tokens)):
            raise base.CheckFailed("09.4", f"{where}: a special token was picked; [CLS], [SEP] and "
                                   "[PAD] are never picked and do not count as words.")
        naive, count = [], -1  # the usual mistake: every piece counted as a word of its own
        for t in tokens:
            count += t not in ("[CLS]", "[SEP]", "[PAD]")
            naive.append(t not in ("[CLS]", "[SEP]", "[PAD]") and count in words)
        if answer == naive and naive != expected:
            raise base.CheckFailed("09.4", f"{where}: you counted every piece as a word; a '##' piece "
                                   "continues the word before it, gets its number and is picked with it.")
        if any(a != e and t.startswith("##") for a, e, t in zip(answer, expected, tokens)):
            raise base.CheckFailed("09.4", f"{where}: a '##' piece was not picked with its word (or "
                                   "picked without it): all the pieces of a word go together.")
        base.equal("09.4", answer, expected, what=where)
