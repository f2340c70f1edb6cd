"""`fit(model, tokenizer, data, cfg)` trains whatever classifier it is handed: the from-scratch
one (`bertlab.heads`) and transformers' take the same first step from the same weights."""

from __future__ import annotations

import pytest
import torch

from bertlab import heads, hub
from bertlab.data import TextDataset
from bertlab.train import Hooks, TrainConfig, evaluate, fit, setup
from bertlab.train.bench import save_random_model
from bertlab.train.loop import Trainer


def test_setup_builds_the_chosen_classifier_and_fit_trains_the_from_scratch_one(tmp_path):
    tiny = save_random_model(tmp_path / "tiny", "tiny")
    cfg = TrainConfig(model=tiny, max_train_examples=24, max_eval_examples=8, batch_size=8, num_epochs=1,
                      precision="fp32", lr=1e-3, device="cpu")
    model, tokenizer, data = setup(cfg)
    assert type(model) is heads.BertForSequenceClassification and model.training
    assert data.name == "reviews" and len(data.label_names) == model.config.num_labels == 2
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = []
    result = fit(model, tokenizer, data, cfg, hooks=Hooks(after_step=lambda s: steps.append(s.global_step)),
                 progress=False)
    assert result.model is model and steps == [1, 2, 3] and result.metrics["steps"] == 3
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # it trained
    assert result.metrics["test_accuracy"] == evaluate(model, tokenizer, data.test[:8], max_length=128)["accuracy"]
    other, _, _ = setup(TrainConfig(model=tiny, implementation="transformers"))
    assert type(other).__module__.startswith("transformers") and type(other).__name__ == "BertForSequenceClassification"


def test_bertlab_and_transformers_classifiers_take_the_same_first_step(reviews):
    """MiniLM's weights in both classes, the new head drawn once (transformers') and copied into
    bertlab's, dropout off: fit's first loss and every gradient agree to 1e-5."""
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    theirs = hub.load_classifier("minilm", num_labels=2, attn_implementation="sdpa", **no_dropout)
    with hub.quiet():
        ours = heads.BertForSequenceClassification.from_pretrained("minilm", num_labels=2, **no_dropout)
    assert ours.newly_initialised  # the head (and pooler, if the checkpoint lacks one) is new ...
    with torch.no_grad():  # ... and the same in both
        for name, tensor in ours.state_dict().items():
            tensor.copy_(theirs.state_dict()[name])
    tokenizer = hub.load_tokenizer("minilm")
    train_only = TextDataset("reviews", reviews.train[:8], [], [], reviews.label_names)  # no evaluation: quick
    cfg = TrainConfig(max_train_examples=8, max_eval_examples=8, batch_size=8, max_steps=1, max_length=32,
                      precision="fp32", device="cpu", seed=1)
    runs = {}
    for name, model in (("bertlab", ours), ("transformers", theirs)):
        trainer = Trainer(model.train(), tokenizer, train_only, cfg, progress=False)
        loss, _ = trainer.accumulate([trainer.train[i] for i in next(iter(trainer.sampler))])
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        trainer.optimizer.zero_grad(set_to_none=True)
        runs[name] = loss, grads, trainer.run()
    (loss_a, grads_a, fit_a), (loss_b, grads_b, fit_b) = runs["bertlab"], runs["transformers"]
    print(f"first-step loss: bertlab {loss_a.item():.7f}, transformers {loss_b.item():.7f}")
    torch.testing.assert_close(loss_a, loss_b, atol=1e-5, rtol=0)
    assert fit_a.history[0]["loss"] == pytest.approx(fit_b.history[0]["loss"], abs=1e-5)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) == len(list(ours.parameters()))
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=0, msg=name)


def test_packed_fit_takes_the_padded_step_and_refuses_a_model_without_packing(reviews, tmp_path):
    """packing=True: the same sentences per step as a padded run, so with dropout off the first
    step's loss and gradients are the padded step's (1e-5), in fewer tokens; a transformers
    classifier is refused in one sentence."""
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    tokenizer = hub.load_tokenizer("minilm")
    train_only = TextDataset("reviews", reviews.train[:16], [], [], reviews.label_names)
    runs = {}
    for packing in (False, True):
        torch.manual_seed(0)
        with hub.quiet():
            model = heads.BertForSequenceClassification.from_pretrained("minilm", num_labels=2, **no_dropout)
        cfg = TrainConfig(batch_size=16, max_steps=1, max_length=64, precision="fp32", device="cpu", seed=3,
                          bucketing=False, packing=packing)
        trainer = Trainer(model.train(), tokenizer, train_only, cfg, progress=False)
        examples = [trainer.train[i] for i in next(iter(trainer.sampler))]
        shape = tuple(trainer.collate(examples)["input_ids"].shape)
        loss, lengths = trainer.accumulate(examples)
        runs[packing] = loss, {n: p.grad.clone() for n, p in model.named_parameters()}, sorted(lengths), shape
    (loss_a, grads_a, len_a, shape_a), (loss_b, grads_b, len_b, shape_b) = runs[False], runs[True]
    assert len_a == len_b and len(len_a) == 16  # the same sentences, the same real lengths
    assert shape_b[0] * shape_b[1] < shape_a[0] * shape_a[1]  # packed: fewer tokens than padded
    torch.testing.assert_close(loss_a, loss_b, atol=1e-5, rtol=0)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=0, msg=name)
    tiny = save_random_model(tmp_path / "tiny", "tiny")
    cfg = TrainConfig(model=tiny, max_train_examples=24, max_eval_examples=8, batch_size=8, num_epochs=1,
                      precision="fp32", lr=1e-3, device="cpu", packing=True)
    model, tok, data = setup(cfg)
    result = fit(model, tok, data, cfg, progress=False)
    assert result.metrics["steps"] == 3 and all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    theirs = hub.load_classifier(tiny, num_labels=2)
    with pytest.raises(Exception, match="packing=True needs the course's own classifier"):
        fit(theirs, tok, data, cfg, progress=False)
    with pytest.raises(Exception, match="packing=True needs implementation='bertlab'"):
        TrainConfig(implementation="transformers", packing=True).validate()


def test_packed_compile_run_has_one_static_shape(reviews):
    """packing with compile: every step of the run is (rows, max_length), rows the most any
    step needs, so torch.compile compiles once; without compile the shape fits each step."""
    tokenizer = hub.load_tokenizer("minilm")
    data = TextDataset("reviews", reviews.train[:96], [], [], reviews.label_names)
    with hub.quiet():
        model = heads.BertForSequenceClassification.from_pretrained("minilm", num_labels=2)
    shapes = {}
    for compiled in (True, False):
        cfg = TrainConfig(batch_size=16, num_epochs=2, max_length=64, device="cpu", packing=True, bucketing=False,
                          compile=compiled)
        trainer = Trainer(model, tokenizer, data, cfg, progress=False)
        steps = [b for e in range(2) for b in trainer.sampler.all_batches(e)]
        shapes[compiled] = {tuple(trainer.collate([trainer.train[i] for i in b])["input_ids"].shape) for b in steps}
    assert len(shapes[True]) == 1 and next(iter(shapes[True]))[1] == 64
    rows = next(iter(shapes[True]))[0]
    assert max(r * t for r, t in shapes[False]) <= rows * 64 and len(shapes[False]) > 1
