"""bertlab.train: resume is bit-identical, OOM falls back, naive and fast losses agree, ..."""

from __future__ import annotations

import pytest
import torch

from bertlab import hub, optim
from bertlab.data import Collator
from bertlab.errors import ParameterError
from bertlab.train import Hooks, TrainConfig, checkpoint, evaluate, fit, throughput
from bertlab.train.batching import BucketBatchSampler, padding_fraction, token_lengths
from bertlab.train.bench import save_random_model
from bertlab.train.naive import naive_batch, naive_fit
from bertlab.train.optimizer import param_groups
from bertlab.train.setup import build_model
from bertlab.train.step import make_schedule


def tiny_config(model: str, **changes) -> TrainConfig:
    settings = dict(model=model, max_train_examples=48, max_eval_examples=16, batch_size=8,
                    num_epochs=2, eval_every=4, precision="fp32", lr=1e-3, seed=3)
    return TrainConfig(**{**settings, **changes})


def loaded(cfg: TrainConfig) -> tuple:
    """(model, tokenizer) as `bertlab.train.setup` builds them (the data is the `reviews` fixture)."""
    return build_model(cfg, 2), hub.load_tokenizer(cfg.model)


def test_config_rejects_bad_values_in_one_sentence():
    with pytest.raises(ParameterError, match="lr must be greater than 0"):
        TrainConfig(lr=0.0).validate()
    with pytest.raises(ParameterError, match="precision must be one of"):
        TrainConfig(precision="half").validate()
    with pytest.raises(ParameterError, match="needs an output_dir"):
        TrainConfig(resume=True).validate()
    with pytest.raises(ParameterError, match="bucket_pool must be at least 1"):
        TrainConfig(bucket_pool=0).validate()
    with pytest.raises(ParameterError, match="no setting 'epochs'"):
        TrainConfig.from_dict({"epochs": 3})


def test_no_weight_decay_on_biases_and_layernorm(tiny):
    model = hub.load_classifier(tiny)
    decay, no_decay = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all("bias" in names[id(p)] or "LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert all(p.ndim == 2 for p in decay["params"]) and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_warmup_then_linear_decay():
    """The one schedule, bertlab.optim's (tested against transformers): 0 -> 1 over the warmup."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_schedule(opt, warmup_ratio=2 / 6, total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25])
    assert lrs == pytest.approx([optim.warmup_linear(s, 2, 6) for s in range(6)])


def test_bucketing_is_seeded_complete_and_shards(reviews):
    tok = hub.load_tokenizer("minilm")
    lengths = token_lengths(tok, [ex.text for ex in reviews.train[:400]], 128)
    plain = BucketBatchSampler(lengths, 16, seed=1, bucketing=False)
    bucketed = BucketBatchSampler(lengths, 16, seed=1)
    for sampler in (plain, bucketed):
        flat = sorted(i for batch in sampler for i in batch)
        assert flat == list(range(400))
        assert list(sampler) == list(BucketBatchSampler(lengths, 16, 1, sampler.bucketing))
    assert padding_fraction(lengths, list(bucketed)) < padding_fraction(lengths, list(plain)) / 2
    assert padding_fraction(lengths, list(plain)) < padding_fraction(lengths, list(plain), pad_to=128)
    # a larger pool pads less (the price: batches of one kind of sentence)
    big_pool = BucketBatchSampler(lengths, 16, seed=1, pool=25)
    assert padding_fraction(lengths, list(big_pool)) < padding_fraction(lengths, list(bucketed)) / 2
    ranks = [list(BucketBatchSampler(lengths, 16, 1, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 13  # 25 batches, padded to 26
    assert sorted({i for r in ranks for b in r for i in b}) == list(range(400))


def test_fit_sorts_pools_of_the_configured_size(tiny, reviews):
    from bertlab.train.loop import Trainer

    for pool in (1, 6):
        cfg = tiny_config(tiny, bucket_pool=pool)
        trainer = Trainer(*loaded(cfg), reviews, cfg, progress=False)
        assert trainer.sampler.pool == pool
        assert trainer.sampler.all_batches(0) == BucketBatchSampler(
            token_lengths(trainer.tokenizer, [ex.text for ex in trainer.train], 128), 8, 3, pool=pool
        ).all_batches(0)


def test_naive_and_fast_loops_train_alike_step_by_step(tiny, reviews, monkeypatch):
    """Same batches, schedule and clipping: without dropout (whose masks depend on the padded
    shape) and without bucketing, the two loops' losses agree at every step of two epochs."""
    monkeypatch.setattr(torch.nn.Dropout, "forward", lambda self, x: x)
    cfg = tiny_config(tiny, bucketing=False, weight_decay=0.0, eval_every=0)
    fast_run, naive_run = fit(*loaded(cfg), reviews, cfg, progress=False), naive_fit(*loaded(cfg), reviews, cfg, progress=False)
    fast = [h["loss"] for h in fast_run.history if "loss" in h]
    naive = [h["loss"] for h in naive_run.history]
    assert len(fast) == len(naive) == 12
    torch.testing.assert_close(torch.tensor(fast), torch.tensor(naive), atol=2e-4, rtol=0)
    # one final-metrics function: the same names, computed the same way
    shared = {"test_accuracy", "challenge_accuracy", "train_samples_per_s", "tokens_per_s", "mfu", "steps",
              "precision", "micro_batch_size", "device"}
    assert shared <= set(naive_run.metrics) and shared <= set(fast_run.metrics)
    assert set(naive_run.metrics) == set(fast_run.metrics) - {"best_validation_accuracy", "best_step"}


def test_naive_and_dynamic_padding_give_the_same_loss(tiny, reviews):
    """Same weights, same examples: max_length padding and dynamic padding agree to 1e-5."""
    model, tok = hub.load_classifier(tiny), hub.load_tokenizer(tiny)
    examples = reviews.train[:12]
    padded = naive_batch(tok, examples, 128)
    dynamic = Collator(tok, 128)(examples)
    assert padded["input_ids"].shape[1] == 128 > dynamic["input_ids"].shape[1]
    with torch.no_grad():
        loss_naive = model(**padded).loss
        loss_fast = model(**dynamic).loss
    print(f"naive {loss_naive.item():.7f} fast {loss_fast.item():.7f}")
    torch.testing.assert_close(loss_fast, loss_naive, atol=1e-5, rtol=0)


class Interrupt(Exception):
    pass


def test_resume_after_interruption_is_bit_identical(tiny, reviews, tmp_path):
    cfg_a = tiny_config(tiny, output_dir=str(tmp_path / "a"))
    whole = fit(*loaded(cfg_a), reviews, cfg_a, progress=False)

    def stop_at_step_6(state):
        if state.global_step == 6:
            raise Interrupt  # the checkpoint of step 4 is on disk; steps 5-6 are lost

    cfg = tiny_config(tiny, output_dir=str(tmp_path / "b"))
    with pytest.raises(Interrupt):
        fit(*loaded(cfg), reviews, cfg, hooks=Hooks(after_step=stop_at_step_6), progress=False)
    assert checkpoint.find(tmp_path / "b" / "last") is not None
    cfg.resume = True
    resumed = fit(*loaded(cfg), reviews, cfg, progress=False)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["test_accuracy"] == whole.metrics["test_accuracy"]
    assert hub.load_classifier(str(tmp_path / "b" / "best")).config.num_labels == 2  # a loadable model folder


def test_out_of_memory_halves_the_micro_batch(tmp_path, capsys, reviews):
    no_dropout = save_random_model(tmp_path, "tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    calls = []

    def oom_once(state, batch):
        calls.append(batch["input_ids"].shape[0])
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("simulated")

    cfg = tiny_config(no_dropout, max_steps=2)
    plain = fit(*loaded(cfg), reviews, cfg, progress=False)
    fallen = fit(*loaded(cfg), reviews, cfg, hooks=Hooks(before_forward=oom_once), progress=False)
    assert "halving them to 4" in capsys.readouterr().out
    assert calls[:3] == [8, 4, 4] and fallen.metrics["micro_batch_size"] == 4
    # the same step's examples in two halves: the same loss (the mean over all 8)
    assert [h["loss"] for h in fallen.history] == pytest.approx([h["loss"] for h in plain.history], abs=1e-5)


def test_checkpoint_write_is_atomic(tiny, tmp_path, monkeypatch):
    model = hub.load_classifier(tiny)
    opt = torch.optim.AdamW(model.parameters())
    sched = make_schedule(opt, 0.1, 10)
    checkpoint.save(tmp_path / "last", model, opt, sched, {"step": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", crash)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path / "last", model, opt, sched, {"step": 2})
    monkeypatch.undo()
    assert checkpoint.load(tmp_path / "last", model, opt, sched) == {"step": 1}


def test_flops_formula_and_evaluate(tiny, reviews):
    model, tok = hub.load_classifier(tiny), hub.load_tokenizer(tiny)
    n = throughput.encoder_params(model)
    assert n == sum(p.numel() for name, p in model.named_parameters() if name.startswith("bert.encoder.layer."))
    assert throughput.training_flops(model, [10, 20]) == 6 * n * 30 + 12 * 2 * 32 * (100 + 400)
    peak, label = throughput.peak_flops(torch.device("cpu"), "fp32")
    assert peak > 0 and "estimate" in label
    out = evaluate(model, tok, reviews.test[:20], batch_size=8)
    labels = torch.tensor([ex.label for ex in reviews.test[:20]])
    assert out["probs"].shape == (20, 2)
    assert out["accuracy"] == pytest.approx((out["probs"].argmax(1) == labels).float().mean().item())
