"""bertlab.model against transformers: the bundled weights and a random tiny config."""

import dataclasses

import pytest
import torch
import transformers

from bertlab import hub
from bertlab.errors import BertlabError, ParameterError
from bertlab.heads import BertForMaskedLM, BertForSequenceClassification
from bertlab.model import BertConfig, BertModel, count_parameters
from bertlab.pretrained import read_weights

TINY = BertConfig(
    vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, max_position_embeddings=16, num_labels=3,
)


def max_diff(a, b):
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def batch():
    tok = hub.load_tokenizer("minilm")
    return dict(tok(
        ["The bank of the river was muddy.", "I paid the money into my bank account yesterday."],
        ["Short.", "A second segment here."],
        padding=True, return_tensors="pt",
    ))


@pytest.fixture(scope="module")
def bundled():
    return BertModel.from_pretrained("minilm"), hub.load_encoder("minilm", attn_implementation="eager")


def tiny_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, TINY.vocab_size, (3, 9), generator=g)
    types = torch.randint(0, 2, (3, 9), generator=g)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids, types, mask


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_bundled_hidden_states_match_transformers(bundled, batch, implementation):
    ours, ref = bundled
    ours.config = dataclasses.replace(ours.config, attn_implementation=implementation,
                                      output_hidden_states=True, output_attentions=True)
    assert batch["attention_mask"].min() == 0 and batch["token_type_ids"].max() == 1
    with torch.no_grad():
        out = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        want = ref(**batch, output_hidden_states=True, output_attentions=True)
    keep = batch["attention_mask"].bool()
    assert max_diff(out.last_hidden_state[keep], want.last_hidden_state[keep]) < 1e-5
    assert max_diff(out.last_hidden_state, want.last_hidden_state) < 1e-5
    assert max_diff(out.pooler_output, want.pooler_output) < 1e-5
    assert len(out.hidden_states) == len(want.hidden_states) == 7
    for a, b in zip(out.hidden_states, want.hidden_states):
        assert max_diff(a, b) < 1e-5
    for a, b in zip(out.attentions, want.attentions):
        assert a.shape == (2, 12, batch["input_ids"].shape[1], batch["input_ids"].shape[1])
        assert max_diff(a, b) < 1e-5


def test_outputs_off_by_default():
    ours = BertModel(dataclasses.replace(TINY))
    out = ours(torch.tensor([[1, 2, 3]]))
    assert out.hidden_states is None and out.attentions is None
    assert out.last_hidden_state.shape == (1, 3, 32) and out.pooler_output.shape == (1, 32)


def tiny_pair(hf_class, our_class):
    torch.manual_seed(0)
    hf = hf_class(TINY.to_hf()).eval()
    ours = our_class(TINY)
    ours.load_checked(hf.state_dict())
    return hf, ours.eval()


def test_tiny_random_config_matches_transformers():
    hf, ours = tiny_pair(transformers.BertModel, BertModel)
    ids, types, mask = tiny_batch()
    with torch.no_grad():
        out, want = ours(ids, types, mask), hf(input_ids=ids, token_type_ids=types, attention_mask=mask)
    assert max_diff(out.last_hidden_state, want.last_hidden_state) < 1e-5
    assert max_diff(out.pooler_output, want.pooler_output) < 1e-5


def test_tiny_masked_lm_logits_and_loss_match():
    hf, ours = tiny_pair(transformers.BertForMaskedLM, BertForMaskedLM)
    ids, types, mask = tiny_batch(1)
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 4], labels[2, 1] = 7, 9, 11
    with torch.no_grad():
        out = ours(ids, types, mask, labels=labels)
        want = hf(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    assert max_diff(out.logits, want.logits) < 1e-5
    assert abs(out.loss.item() - want.loss.item()) < 1e-5
    # the loss is the mean -log p over the three labelled positions only
    logp = out.logits.log_softmax(-1)
    by_hand = -(logp[0, 2, 7] + logp[1, 4, 9] + logp[2, 1, 11]) / 3
    assert abs(out.loss.item() - by_hand.item()) < 1e-5
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight


def test_tiny_classifier_matches_transformers():
    hf, ours = tiny_pair(transformers.BertForSequenceClassification, BertForSequenceClassification)
    ids, types, mask = tiny_batch(2)
    labels = torch.tensor([0, 2, 1])
    with torch.no_grad():
        out = ours(ids, types, mask, labels=labels)
        want = hf(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    assert out.logits.shape == (3, 3)
    assert max_diff(out.logits, want.logits) < 1e-5
    assert abs(out.loss.item() - want.loss.item()) < 1e-5


def test_save_pretrained_loads_in_transformers_and_back(tmp_path):
    torch.manual_seed(0)
    ours = BertForMaskedLM(TINY).eval()
    with torch.no_grad():
        ours.cls.predictions.bias.normal_()
    ours.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "model.safetensors"}
    ids, types, mask = tiny_batch(3)
    hf = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    again = BertForMaskedLM.from_pretrained(str(tmp_path))
    assert again.newly_initialised == []
    with torch.no_grad():
        want = ours(ids, types, mask).logits
        assert max_diff(hf(input_ids=ids, token_type_ids=types, attention_mask=mask).logits, want) < 1e-5
        assert max_diff(again(ids, types, mask).logits, want) < 1e-5
    # a BertModel reads the same folder: "bert." is stripped, the MLM head ignored, the
    # pooler (which BertForMaskedLM does not have) initialised and reported
    base = BertModel.from_pretrained(str(tmp_path))
    assert base.newly_initialised == ["pooler.dense.bias", "pooler.dense.weight"]


def test_minilm_into_heads_reports_new_weights(capsys):
    mlm = BertForMaskedLM.from_pretrained("minilm")
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and "cls.predictions.transform.dense" in line
    assert "cls.predictions.bias" in mlm.newly_initialised
    assert all(k.startswith("cls.") for k in mlm.newly_initialised)
    clf = BertForSequenceClassification.from_pretrained("minilm", num_labels=4)
    assert clf.newly_initialised == ["classifier.bias", "classifier.weight"]
    assert clf.classifier.out_features == 4
    base = BertModel.from_pretrained("minilm")
    assert base.newly_initialised == [] and capsys.readouterr().out.count("\n") == 1


def test_bad_checkpoints_are_clear_errors():
    ours = BertModel(TINY)
    good = ours.state_dict()
    with pytest.raises(BertlabError, match="encoder.layer.0.extra"):
        ours.load_checked({**good, "encoder.layer.0.extra": torch.zeros(1)})
    bad = {**good, "encoder.layer.1.intermediate.dense.weight": torch.zeros(3, 3)}
    with pytest.raises(BertlabError, match=r"encoder.layer.1.intermediate.dense.weight.*\(3, 3\)"):
        ours.load_checked(bad)
    del good["encoder.layer.0.output.dense.bias"]
    with pytest.raises(BertlabError, match="encoder.layer.0.output.dense.bias"):
        ours.load_checked(good)
    with pytest.raises(BertlabError, match="Unknown config field"):
        BertModel.from_pretrained("minilm", hidden_sise=3)


def test_prefixed_checkpoint_and_pytorch_bin(tmp_path):
    hf, ours = tiny_pair(transformers.BertForMaskedLM, BertForMaskedLM)
    state = {f"bert.{k}": v for k, v in ours.bert.state_dict().items()}
    state["bert.embeddings.position_ids"] = torch.arange(16)[None]
    torch.save(state, tmp_path / "pytorch_model.bin")
    TINY.to_hf().to_json_file(str(tmp_path / "config.json"))
    assert set(read_weights(tmp_path)) == set(state)
    base = BertModel.from_pretrained(str(tmp_path))
    assert base.newly_initialised == ["pooler.dense.bias", "pooler.dense.weight"]
    ids, types, mask = tiny_batch()
    with torch.no_grad():
        assert max_diff(base(ids, types, mask).last_hidden_state,
                        ours.bert(ids, types, mask).last_hidden_state) < 1e-6


def test_config_round_trip_and_checks():
    hf = TINY.to_hf()
    assert isinstance(hf, transformers.BertConfig) and hf.num_labels == 3
    assert BertConfig.from_hf(hf) == TINY
    eager = dataclasses.replace(TINY, attn_implementation="eager")
    assert eager.to_hf()._attn_implementation == "eager"
    assert BertConfig.from_pretrained("minilm").layer_norm_eps == 1e-12
    with pytest.raises(ParameterError, match="multiple"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ParameterError, match="GELU"):
        BertConfig(hidden_act="relu")
    with pytest.raises(ParameterError, match="attn_implementation"):
        BertConfig(attn_implementation="flash")


def test_parameter_counts():
    base = count_parameters(BertConfig())  # bert-base-uncased, counted on the meta device
    assert round(base / 1e6) == 109 and 109e6 < base < 110e6  # "about 110M"
    assert round(count_parameters(BertConfig.from_pretrained("minilm")) / 1e5) == 227  # 22.7M
    assert count_parameters(TINY) == transformers.BertModel(TINY.to_hf()).num_parameters()
    assert count_parameters(BertModel(TINY)) == count_parameters(TINY)
    mlm = BertForMaskedLM(TINY)  # the tied decoder is counted once
    assert count_parameters(mlm) == sum(p.numel() for p in transformers.BertForMaskedLM(
        TINY.to_hf()).parameters())


def test_training_mode_uses_dropout_and_backprops():
    torch.manual_seed(0)
    model = BertForSequenceClassification(TINY).train()
    ids, types, mask = tiny_batch()
    out = model(ids, types, mask, labels=torch.tensor([0, 1, 2]))
    out.loss.backward()
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0
    assert not torch.equal(model(ids, types, mask).logits, model(ids, types, mask).logits)


def test_varlen_is_a_config_choice_and_positions_default_to_0_to_T():
    varlen = dataclasses.replace(TINY, attn_implementation="varlen")
    assert varlen.to_hf()._attn_implementation == "sdpa"  # transformers' BERT has no "varlen"
    emb = BertModel(TINY).eval().embeddings
    ids, types, _ = tiny_batch()
    explicit = torch.arange(9).expand(3, 9)
    assert torch.equal(emb(ids, types), emb(ids, types, explicit))
