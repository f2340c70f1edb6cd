"""bertlab.pretraining: masking statistics, the MLM and NSP losses, the NSP builder, the loop."""

import copy

import pytest
import torch
import torch.nn.functional as F

from bertlab import pretraining as P
from bertlab.data import load_corpus
from bertlab.errors import ParameterError
from bertlab.heads import BertForMaskedLM
from bertlab.tokenization import WordPieceTokenizer

SPECIAL = [0, 100, 101, 102, 103]  # [PAD], [UNK], [CLS], [SEP], [MASK] in the bundled vocabulary


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def small_tokenizer(corpus):
    return WordPieceTokenizer.from_pretrained("minilm").restricted_to(s for d in corpus for s in d)


def a_padded_batch(rows: int = 400, length: int = 120) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 30522, (rows, length), generator=g)
    ids[:, 0] = 101
    lengths = torch.randint(10, length, (rows,), generator=g)
    for r, n in enumerate(lengths.tolist()):
        ids[r, n] = 102
        ids[r, n + 1:] = 0  # padding after [SEP]
    return ids


def test_masking_statistics_and_never_special_or_padding():
    ids = a_padded_batch()
    inputs, labels = P.mask_tokens(ids, 103, SPECIAL, 30522, generator=torch.Generator().manual_seed(0))
    special = torch.isin(ids, torch.tensor(SPECIAL))
    picked = labels != -100
    assert not (picked & special).any() and torch.equal(inputs[special], ids[special])
    assert torch.equal(labels[picked], ids[picked]) and torch.equal(inputs[~picked], ids[~picked])
    n = int(picked.sum())
    assert abs(n / int((~special).sum()) - 0.15) < 0.01
    masked = (inputs[picked] == 103).sum() / n
    kept = (inputs[picked] == ids[picked]).sum() / n
    replaced = 1 - masked - kept
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.015 and abs(replaced - 0.1) < 0.015
    assert not torch.isin(inputs[picked & (inputs != 103)], torch.tensor(SPECIAL)).any()


def test_masking_repeats_with_the_same_generator():
    ids = a_padded_batch(20, 30)
    a = P.mask_tokens(ids, 103, SPECIAL, 30522, generator=torch.Generator().manual_seed(5))
    b = P.mask_tokens(ids, 103, SPECIAL, 30522, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ParameterError):
        P.mask_tokens(ids, 103, SPECIAL, 30522, mlm_probability=1.5)


def test_mlm_loss_is_cross_entropy_over_masked_positions_only():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g)
    labels = torch.full((3, 7), -100)
    labels[0, 2], labels[1, 5], labels[2, 0] = 4, 9, 1
    ours = P.mlm_loss(logits, labels)
    ref = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    by_hand = -torch.stack([logits[0, 2].log_softmax(-1)[4], logits[1, 5].log_softmax(-1)[9],
                            logits[2, 0].log_softmax(-1)[1]]).mean()
    assert torch.allclose(ours, ref, atol=1e-6) and torch.allclose(ours, by_hand, atol=1e-6)


def test_model_loss_equals_mlm_loss(small_tokenizer):
    torch.manual_seed(0)
    model = BertForMaskedLM(P.tiny_config(len(small_tokenizer), num_hidden_layers=1)).eval()
    ids = small_tokenizer(["the chef cooked the pasta.", "bees make honey."], padding=True,
                          return_tensors="pt")["input_ids"]
    inputs, labels = P.mask_tokens(ids, small_tokenizer.mask_token_id, small_tokenizer.all_special_ids,
                                   len(small_tokenizer), mlm_probability=0.5,
                                   generator=torch.Generator().manual_seed(0))
    out = model(inputs, attention_mask=(ids != 0).long(), labels=labels)
    assert torch.allclose(out.loss, P.mlm_loss(out.logits, labels), atol=1e-6)


def test_nsp_builder_is_balanced_and_honest(corpus):
    examples = P.nsp_examples(corpus, seed=0)
    assert len(examples) == sum(len(d) - 1 for d in corpus)
    share = sum(e.is_next for e in examples) / len(examples)
    assert abs(share - 0.5) < 0.02
    nexts = {(d[i], d[i + 1]) for d in corpus for i in range(len(d) - 1)}
    assert all((e.a, e.b) in nexts for e in examples if e.is_next)
    assert P.nsp_examples(corpus, seed=0) == examples and P.nsp_examples(corpus, seed=1) != examples
    with pytest.raises(ParameterError):
        P.nsp_examples(corpus[:1])


def test_nsp_loss_is_binary_cross_entropy():
    z = torch.tensor([2.0, -1.0, 0.3])
    y = torch.tensor([1, 0, 0])
    ours = P.nsp_loss(z, y)
    assert torch.allclose(ours, F.binary_cross_entropy_with_logits(z, y.float()), atol=1e-6)
    two_way = torch.stack([torch.zeros(3), z], dim=1)  # logits (random, next)
    assert torch.allclose(ours, F.cross_entropy(two_way, y), atol=1e-6)


def test_a_few_steps_lower_the_loss_and_fill_mask_works(corpus, small_tokenizer):
    torch.manual_seed(0)
    config = P.tiny_config(len(small_tokenizer), hidden_size=32, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=64)
    model = BertForMaskedLM(config)
    untrained = copy.deepcopy(model)
    losses = P.pretrain(model, small_tokenizer, corpus[:100], num_steps=30, batch_size=8,
                        lr=1e-2, progress=False)
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    (guesses,) = P.fill_mask(model, small_tokenizer, "the chef cooked the [MASK].", top_k=3)
    assert len(guesses) == 3 and guesses[0][1] >= guesses[1][1] >= guesses[2][1]
    # 30 steps teach the frequent pieces: top-5 accuracy on 200 training sentences goes from
    # chance (about 0.04 with these weights) to about 0.23
    sentences = [s for d in corpus[:100] for s in d][:200]
    before = P.fill_mask_accuracy(untrained, small_tokenizer, sentences)
    after = P.fill_mask_accuracy(model, small_tokenizer, sentences)
    assert before < 0.1 and after > before + 0.1, (before, after)
    with pytest.raises(ParameterError):
        P.fill_mask(model, small_tokenizer, "no mask here")
