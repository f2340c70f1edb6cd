"""Packed (padding-free) batches equal padded ones: logits, loss, every gradient.

The same sentences go through the from-scratch BERT twice, once padded (one sentence per
row, a 0/1 mask) and once packed by `bertlab.train.packing.pack` (sentences end to end,
the mask numbering them); with dropout off both must give the same numbers.
"""

import dataclasses

import pytest
import torch
import transformers

from bertlab import attention, hub
from bertlab.attention import packed_layout
from bertlab.data import load_text_dataset
from bertlab.heads import BertForSequenceClassification
from bertlab.model import BertConfig, BertModel, sentence_mean
from bertlab.train.packing import pack

CLS, SEP = 2, 3
TINY = BertConfig(
    vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, max_position_embeddings=64, num_labels=3,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)
LENGTHS = [7, 12, 5, 9, 3, 14, 6, 8, 4, 10]


def max_diff(a, b):
    return (a.float() - b.float()).abs().max().item()


def sentences(lengths=LENGTHS, seed=0):
    """Random [CLS] ... [SEP] sentences, some with a second segment, and labels."""
    g = torch.Generator().manual_seed(seed)
    ids, types = [], []
    for n in lengths:
        ids.append([CLS] + torch.randint(5, TINY.vocab_size, (n - 2,), generator=g).tolist() + [SEP])
        cut = n // 2 if n % 2 else n  # odd lengths get a second segment
        types.append([0] * cut + [1] * (n - cut))
    labels = torch.randint(0, TINY.num_labels, (len(lengths),), generator=g).tolist()
    return ids, types, labels


def padded(ids, types, labels):
    """Dynamic padding: one sentence per row, padded to the longest."""
    T = max(len(x) for x in ids)
    rows = lambda xs: torch.tensor([x + [0] * (T - len(x)) for x in xs])  # noqa: E731
    return dict(input_ids=rows(ids), token_type_ids=rows(types),
                attention_mask=rows([[1] * len(x) for x in ids]), labels=torch.tensor(labels))


def packed(ids, types, labels, row_tokens=24, rows=4):
    (batch,) = pack(ids, types, labels, row_tokens=row_tokens, rows=rows)  # one step holds them all
    assert batch.attention_mask.max() > 1  # really packed: some row holds several sentences
    return batch


def tiny_model(implementation="sdpa", seed=0):
    torch.manual_seed(seed)
    return BertForSequenceClassification(dataclasses.replace(TINY, attn_implementation=implementation)).eval()


def loss_and_grads(model, batch):
    model.zero_grad()
    out = model(**batch)
    out.loss.backward()
    return out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_packed_equals_padded_logits_loss_and_gradients(implementation):
    ids, types, labels = sentences()
    model = tiny_model(implementation)
    want, want_grads = loss_and_grads(model, padded(ids, types, labels))
    batch = packed(ids, types, labels)
    out, grads = loss_and_grads(model, batch.model_inputs())
    assert out.logits.shape == (len(ids), TINY.num_labels)
    assert max_diff(out.logits, want.logits[batch.order]) < 1e-5
    assert abs(out.loss.item() - want.loss.item()) < 1e-5
    assert set(grads) == set(want_grads) == {n for n, _ in model.named_parameters()}
    for name, g in grads.items():
        assert max_diff(g, want_grads[name]) < 1e-5, name


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
                    reason="this CPU has no bfloat16 support in oneDNN (not even emulated)")
def test_packed_equals_padded_in_bf16_autocast():
    ids, types, labels = sentences(LENGTHS[:6], seed=1)
    model = tiny_model("sdpa", seed=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want, want_grads = loss_and_grads(model, padded(ids, types, labels))
        batch = packed(ids, types, labels, row_tokens=20, rows=3)
        out, grads = loss_and_grads(model, batch.model_inputs())
    assert out.logits.dtype == torch.bfloat16  # autocast really ran the layers in bf16
    # relative to the reference's norm; the floor covers gradients that are 0 in exact
    # arithmetic and rounding noise in bf16 (key biases: softmax ignores a shift of all scores)
    rel = lambda a, b: ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-6)).item()  # noqa: E731
    assert rel(out.logits, want.logits[batch.order]) < 2e-2
    assert abs(out.loss.item() - want.loss.item()) < 2e-2 * abs(want.loss.item())
    for name, g in grads.items():
        assert rel(g, want_grads[name]) < 2e-2, name


def test_positions_restart_and_attention_stays_inside_each_sentence():
    ids, types, labels = sentences()
    batch = packed(ids, types, labels)
    mask = batch.attention_mask
    positions, block, starts = packed_layout(mask)
    for r, t in starts.tolist():  # each sentence counts 0, 1, 2, ... from its [CLS]
        n = int((mask[r] == mask[r, t]).sum())
        assert positions[r, t : t + n].tolist() == list(range(n))
        assert batch.input_ids[r, t] == CLS
    model = tiny_model().bert
    with torch.no_grad():
        h = model(batch.input_ids, batch.token_type_ids, mask).last_hidden_state  # (B, T, H)
        # a sentence far along a row gives the same states as that sentence alone
        for (r, t), i in zip(starts.tolist(), batch.order.tolist()):
            alone = model(torch.tensor([ids[i]]), torch.tensor([types[i]])).last_hidden_state[0]
            assert max_diff(h[r, t : t + len(ids[i])], alone) < 1e-5
        # change the second sentence of row 0: the first sentence of row 0 does not move
        row = 0
        assert mask[row].max() >= 2
        changed = batch.input_ids.clone()
        second = mask[row] == 2
        changed[row, second] = (changed[row, second] + 7) % TINY.vocab_size
        h2 = model(changed, batch.token_type_ids, mask).last_hidden_state
    first = mask[row] == 1
    assert max_diff(h2[row, first], h[row, first]) < 1e-6
    assert max_diff(h2[row, second], h[row, second]) > 1e-3  # the change did reach sentence 2


def test_sentence_mean_is_each_sentence_mean_pooled_alone():
    ids, types, labels = sentences()
    batch = packed(ids, types, labels)
    model = tiny_model().bert
    with torch.no_grad():
        h = model(batch.input_ids, batch.token_type_ids, batch.attention_mask).last_hidden_state
        means = sentence_mean(h, batch.attention_mask)  # (N, H)
        assert means.shape == (len(ids), TINY.hidden_size)
        for n, i in enumerate(batch.order.tolist()):
            alone = model(torch.tensor([ids[i]]), torch.tensor([types[i]])).last_hidden_state[0]
            assert max_diff(means[n], alone.mean(0)) < 1e-5
        # on a padded batch it is the usual masked mean, one row per sentence
        pad = padded(ids, types, labels)
        hp = model(pad["input_ids"], pad["token_type_ids"], pad["attention_mask"]).last_hidden_state
        m = pad["attention_mask"][..., None].float()
        assert max_diff(sentence_mean(hp, pad["attention_mask"]), (hp * m).sum(1) / m.sum(1)) < 1e-6


def test_from_scratch_and_transformers_classifiers_take_the_same_first_step():
    tok = hub.load_tokenizer("minilm")
    texts = [ex.text for ex in load_text_dataset("reviews").train[:8]]
    enc = tok(texts, truncation=True, max_length=64)
    labels = [i % 2 for i in range(len(texts))]
    ours = BertForSequenceClassification.from_pretrained(
        "minilm", num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf = hub.load_classifier("minilm", num_labels=2, attn_implementation="sdpa",
                             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    assert isinstance(hf, transformers.BertForSequenceClassification)
    g = torch.Generator().manual_seed(0)  # one new head, copied into both
    head = {"classifier.weight": torch.randn(2, 384, generator=g) * 0.02, "classifier.bias": torch.zeros(2)}
    ours.load_checked({**hf.state_dict(), **head})
    hf.load_state_dict({**hf.state_dict(), **head})
    ours.train(), hf.train()  # training mode, dropout 0: the first step of fine-tuning
    row_tokens = max(len(x) for x in enc["input_ids"]) * 2
    (batch,) = pack(enc["input_ids"], enc["token_type_ids"], labels, row_tokens=row_tokens, rows=5)
    out, grads = loss_and_grads(ours, batch.model_inputs())
    pad = padded(enc["input_ids"], enc["token_type_ids"], labels)
    hf.zero_grad()
    want = hf(**pad)
    want.loss.backward()
    assert batch.attention_mask.max() > 1
    assert max_diff(out.logits, want.logits[batch.order]) < 1e-5
    assert abs(out.loss.item() - want.loss.item()) < 1e-5
    hf_grads = {n: p.grad for n, p in hf.named_parameters()}
    assert set(grads) == set(hf_grads)  # the same Hugging Face names
    for name, g in grads.items():
        assert max_diff(g, hf_grads[name]) < 1e-5, name


def test_packer_lays_every_token_once_in_static_rows():
    lengths = [30, 5, 9, 17, 3, 12, 8, 20, 4, 6, 11, 7]
    ids, types, labels = sentences(lengths, seed=2)
    steps = pack(ids, types, labels, row_tokens=24, rows=3)
    assert len(steps) > 1
    seen = []
    for batch in steps:
        for t in (batch.input_ids, batch.token_type_ids, batch.attention_mask):
            assert t.shape == (3, 24) and t.dtype == torch.long  # one static shape
        assert batch.labels.tolist() == [labels[i] for i in batch.order.tolist()]
        n = 0
        for r in range(3):
            numbers = batch.attention_mask[r]
            k_max = int(numbers.max())
            used = numbers != 0
            assert numbers[used].unique().tolist() == list(range(1, k_max + 1))  # 1..K in every row
            assert not used[int(used.sum()):].any()  # padding only at the end of a row
            for k in range(1, k_max + 1):  # the k-th sentence of the row is order[n]
                i = batch.order[n].item()
                want = ids[i] if len(ids[i]) <= 24 else ids[i][:23] + ids[i][-1:]
                assert batch.input_ids[r, numbers == k].tolist() == want
                assert batch.token_type_ids[r, numbers == k].tolist() == types[i][: len(want) - 1] + types[i][-1:]
                n += 1
        assert n == len(batch.order)
        seen += batch.order.tolist()
    assert sorted(seen) == list(range(len(lengths)))  # every sentence exactly once
    assert len(steps[0].order) > 3  # more sentences than rows: rows hold several
    # first fit in order: a sentence that just fits goes in, one token more opens a new step
    ids, types, labels = sentences([6, 4, 6, 5], seed=3)
    steps = pack(ids, types, labels, row_tokens=10, rows=1)
    assert [b.order.tolist() for b in steps] == [[0, 1], [2], [3]]
    assert steps[0].attention_mask.tolist() == [[1] * 6 + [2] * 4]  # full: no padding


def test_empty_rows_give_no_outputs_and_one_sentence_rows_are_padded_batches():
    ids, types, labels = sentences([12, 9, 14])
    model = tiny_model()
    (batch,) = pack(ids, types, labels, row_tokens=14, rows=5)  # 3 sentences, 5 rows: 2 empty
    assert batch.attention_mask.max() == 1 and not batch.attention_mask[3:].any()
    with torch.no_grad():
        out = model(**batch.model_inputs())
        want = model(**padded(ids, types, labels))
    assert out.logits.shape == (3, TINY.num_labels)
    assert max_diff(out.logits, want.logits[batch.order]) < 1e-5


def test_ordinary_mask_gives_todays_outputs():
    torch.manual_seed(0)
    hf = transformers.BertModel(TINY.to_hf()).eval()
    ours = BertModel(TINY)
    ours.load_checked(hf.state_dict())
    pad = padded(*sentences())
    assert not attention.is_packed(pad["attention_mask"])
    with torch.no_grad():
        out = ours.eval()(pad["input_ids"], pad["token_type_ids"], pad["attention_mask"])
        want = hf(input_ids=pad["input_ids"], token_type_ids=pad["token_type_ids"],
                  attention_mask=pad["attention_mask"])
    assert out.sentence_starts is None
    assert max_diff(out.last_hidden_state, want.last_hidden_state) < 1e-5  # padding positions too
    assert max_diff(out.pooler_output, want.pooler_output) < 1e-5


def test_varlen_on_cpu_falls_back_to_sdpa_with_one_warning(monkeypatch):
    monkeypatch.setattr(attention, "_varlen_warned", False)
    ids, types, labels = sentences()
    batch = packed(ids, types, labels)
    with torch.no_grad():
        want = tiny_model("sdpa")(**batch.model_inputs()).logits
        model = tiny_model("varlen")
        with pytest.warns(UserWarning, match="ran SDPA with a block-diagonal mask instead") as caught:
            out = model(**batch.model_inputs()).logits
            model(**batch.model_inputs())
    assert len(caught) == 1
    assert torch.equal(out, want)


@pytest.mark.skipif(not torch.cuda.is_available() or attention.varlen_attn is None,
                    reason="the variable-length kernel needs CUDA and torch.nn.attention.varlen")
def test_varlen_kernel_equals_sdpa_on_cuda():
    ids, types, labels = sentences()
    batch = {k: v.cuda() for k, v in packed(ids, types, labels).model_inputs().items()}
    logits = {}
    for implementation in ("sdpa", "varlen"):
        model = tiny_model(implementation).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits[implementation] = model(**batch).logits.float()
    assert max_diff(logits["varlen"], logits["sdpa"]) < 2e-2


def test_compiled_model_reads_packed_and_padded_masks_without_looking_at_their_values():
    """Inside torch.compile `is_packed` does not branch on the mask's values (that would
    break the graph at the question): the packed path reads a 0/1 mask too, with the same
    logits as eager. Dynamo alone traces here (no code generation), so the test is quick."""
    ids, types, labels = sentences()
    model = tiny_model("sdpa")
    for batch in (padded(ids, types, labels), packed(ids, types, labels).model_inputs()):
        want = model(**batch).logits
        explained = torch._dynamo.explain(model)(**batch)
        reasons = " ".join(str(b.reason) for b in explained.break_reasons)
        assert "is_packed" not in reasons and "Tensor.item" not in reasons, reasons
        got = torch.compile(model, backend="eager", dynamic=False)(**batch).logits
        assert got.shape == want.shape and max_diff(got, want) < 1e-5
        torch._dynamo.reset()
    assert attention.is_packed(padded(ids, types, labels)["attention_mask"]) is False  # eager still looks
