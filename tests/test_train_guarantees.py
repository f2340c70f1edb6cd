"""bertlab.train keeps its promises: the best weights come back, "auto" precision picks bf16
where the CPU has it, gradient accumulation is one big batch, a crash mid-swap leaves `.old`,
and /proc/cpuinfo is read once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bertlab import hub
from bertlab.errors import ParameterError
from bertlab.train import Hooks, TrainConfig, checkpoint, throughput
from bertlab.train.bench import save_random_model
from bertlab.train.loop import Trainer
from bertlab.train.precision import autocast, resolve_precision
from bertlab.train.setup import build_model
from bertlab.train.step import make_schedule


@pytest.fixture(scope="module")
def no_dropout(tmp_path_factory):
    """A tiny random BERT (hidden 32, 2 layers) without dropout: a step depends only on its batch."""
    return save_random_model(tmp_path_factory.mktemp("tiny"), "tiny", hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0)



def tiny_config(model: str, **changes) -> TrainConfig:
    settings = dict(model=model, max_train_examples=48, max_eval_examples=16, batch_size=8,
                    num_epochs=1, eval_every=2, precision="fp32", lr=1e-3, seed=3, device="cpu")
    return TrainConfig(**{**settings, **changes})


def trainer_for(cfg: TrainConfig, data, hooks=None) -> Trainer:
    """`fit`'s Trainer on the classifier `bertlab.train.setup` builds for `cfg`."""
    return Trainer(build_model(cfg, 2), hub.load_tokenizer(cfg.model), data, cfg, hooks, progress=False)


@pytest.mark.parametrize("on_disk", [False, True], ids=["in_memory", "output_dir"])
def test_fit_returns_the_best_weights_not_the_last(no_dropout, reviews, tmp_path, monkeypatch, on_disk):
    """48 examples in steps of 8, evaluated at steps 2, 4 and 6; step 4 scores best."""
    weights: dict[int, dict[str, torch.Tensor]] = {}
    scores = {2: 0.5, 4: 0.9, 6: 0.6}
    def snapshot(state, _):
        weights[state.global_step] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    hooks = Hooks(after_eval=snapshot)
    cfg = tiny_config(no_dropout, output_dir=str(tmp_path) if on_disk else "")
    trainer = trainer_for(cfg, reviews, hooks)
    score_split = trainer.score_split

    def scripted(examples):  # the validation score is set by the test, the other splits are real
        if examples is reviews.validation:
            return {"accuracy": scores[trainer.state.global_step]}
        return score_split(examples)

    monkeypatch.setattr(trainer, "score_split", scripted)
    result = trainer.run()
    assert sorted(weights) == [2, 4, 6]
    assert trainer.state.best_step == result.metrics["best_step"] == 4
    assert result.metrics["best_validation_accuracy"] == 0.9
    returned = result.model.state_dict()
    assert all(torch.equal(returned[k], weights[4][k]) for k in returned)
    assert not all(torch.equal(returned[k], weights[6][k]) for k in returned)  # the last step's differ
    if on_disk:
        best = load_file(str(tmp_path / "best" / "model.safetensors"))
        assert all(torch.equal(best[k], weights[4][k]) for k in best)


@pytest.mark.parametrize("flags, onednn, native_bf16", [
    ({"avx512f", "avx512_bf16"}, True, True),
    ({"avx512f", "amx_bf16"}, True, True),
    ({"avx512f", "avx2"}, True, False),  # oneDNN says yes on plain AVX-512, where bf16 is emulated
    (set(), True, True),  # no /proc/cpuinfo (macOS, Windows): oneDNN's check decides
    (set(), False, False),
])
def test_auto_precision_is_bf16_only_on_a_cpu_with_native_bf16(no_dropout, reviews, monkeypatch, flags, onednn,
                                                                native_bf16):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    monkeypatch.setattr("bertlab.train.precision.cpu_flags", lambda: flags)
    cpu = torch.device("cpu")
    expected = "bf16" if native_bf16 else "fp32"
    assert resolve_precision("auto", cpu) == expected
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ParameterError, match="fp16.*needs a CUDA GPU"):
        resolve_precision("fp16", cpu)
    trainer = trainer_for(tiny_config(no_dropout, precision="auto"), reviews)
    assert trainer.precision == expected
    x = torch.ones(2, 2)
    with autocast(cpu, trainer.precision):
        assert (x @ x).dtype == (torch.bfloat16 if native_bf16 else torch.float32)


def test_grad_accum_equals_one_big_batch(no_dropout, reviews):
    """Steps of 8 as one micro-batch of 8 or two of 4: the same loss, gradients and weights (fp32)."""
    sizes: dict[str, list[int]] = {"big": [], "accum": []}

    def trainer(name: str, **changes) -> Trainer:
        hooks = Hooks(before_forward=lambda state, batch: sizes[name].append(len(batch["labels"])))
        return trainer_for(tiny_config(no_dropout, max_steps=1, **changes), reviews, hooks)

    big, accum = trainer("big", batch_size=8), trainer("accum", batch_size=4, grad_accum=2)
    assert big.sampler.all_batches(0) == accum.sampler.all_batches(0)  # steps of 8 examples both
    examples = [big.train[i] for i in next(iter(big.sampler))]
    loss_big, _ = big.accumulate(examples)
    loss_accum, _ = accum.accumulate(examples)
    assert sizes == {"big": [8], "accum": [4, 4]}
    torch.testing.assert_close(loss_accum, loss_big, atol=1e-6, rtol=0)
    for (name, p), q in zip(big.model.named_parameters(), accum.model.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-7, rtol=1e-4, msg=name)
    for t in (big, accum):
        t.optimizer.zero_grad(set_to_none=True)
    one, two = big.run(), accum.run()  # one optimizer step each, from the same weights
    assert one.history[0]["loss"] == pytest.approx(two.history[0]["loss"], abs=1e-6)
    after_one, after_two = one.model.state_dict(), two.model.state_dict()
    for name in after_one:
        torch.testing.assert_close(after_two[name], after_one[name], atol=1e-5, rtol=0, msg=name)


def test_an_interrupted_swap_falls_back_to_the_old_checkpoint(no_dropout, tmp_path, monkeypatch):
    """`save` renames the previous checkpoint to `last.old`, then the new one to `last`: a crash
    between the two renames leaves only `last.old`, and `find` and `load` use it."""
    model = hub.load_classifier(no_dropout)
    opt = torch.optim.AdamW(model.parameters())
    sched = make_schedule(opt, 0.1, 10)
    target = tmp_path / "last"
    checkpoint.save(target, model, opt, sched, {"step": 1})
    saved = checkpoint.model_state(model)
    replace = os.replace

    def power_cut_before_the_new_one_moves_in(src, dst):
        if Path(src).name.startswith(".last.tmp-"):
            raise OSError("power cut")
        replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", power_cut_before_the_new_one_moves_in)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    with pytest.raises(OSError, match="power cut"):
        checkpoint.save(target, model, opt, sched, {"step": 2})
    monkeypatch.undo()
    assert not target.exists() and checkpoint.find(target) == tmp_path / "last.old"
    assert checkpoint.load(target, model, opt, sched) == {"step": 1}
    assert all(torch.equal(v, saved[k]) for k, v in checkpoint.model_state(model).items())
    checkpoint.save(target, model, opt, sched, {"step": 3})  # the next save tidies up
    assert checkpoint.find(target) == target and not (tmp_path / "last.old").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["last"]


CPUINFO = """processor\t: 0
model name\t: Test CPU 9000
cpu MHz\t\t: 3000.000
flags\t\t: fpu avx2 avx512f avx512_bf16

processor\t: 1
model name\t: Test CPU 9000
cpu MHz\t\t: 1200.000
flags\t\t: fpu avx2 avx512f avx512_bf16
"""


@pytest.mark.parametrize("present", [True, False], ids=["cpuinfo", "no_cpuinfo"])
def test_cpu_flags_name_and_clock_come_from_one_read_of_cpuinfo(monkeypatch, tmp_path, present):
    fake = tmp_path / "cpuinfo"
    fake.write_text(CPUINFO)
    opened = []

    def fake_open(path, *args, **kwargs):
        if path != "/proc/cpuinfo":
            return open(path, *args, **kwargs)
        opened.append(path)
        if not present:
            raise FileNotFoundError(path)
        return open(fake, *args, **kwargs)

    monkeypatch.setattr(throughput, "open", fake_open, raising=False)
    monkeypatch.setattr(throughput.platform, "processor", lambda: "")
    monkeypatch.setattr(throughput, "_max_ghz", lambda: None)  # the clock from cpuinfo, not this machine's cpufreq
    throughput._cpuinfo.cache_clear()
    try:
        flags, name, (peak, label) = throughput.cpu_flags(), throughput.cpu_name(), throughput.cpu_peak_flops("bf16", 2)
    finally:
        throughput._cpuinfo.cache_clear()
    assert opened == ["/proc/cpuinfo"]
    if present:  # the first processor's clock; 2 FMA units x 16 lanes x 2 FLOPs, x 2 in bf16
        assert flags == {"fpu", "avx2", "avx512f", "avx512_bf16"} and name == "Test CPU 9000"
        assert peak == 2 * 3.0e9 * 128 and "2 cores x 3.00 GHz x 128 bf16" in label
    else:  # 2.5 GHz assumed, 8 lanes (AVX2) without flags
        assert flags == set() and name == "unknown CPU"
        assert peak == 2 * 2.5e9 * 32 and "2.50 GHz" in label
