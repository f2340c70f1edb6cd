"""A time budget that `fit` enforces: it plans from a warm-up, re-plans when the speed drifts,
stops inside the budget, and its learning-rate schedule still reaches its end."""

from __future__ import annotations

import time

import pytest
import torch

from bertlab import hub
from bertlab.errors import ParameterError
from bertlab.optim import warmup_linear
from bertlab.train import Hooks, TrainConfig, fit
from bertlab.train.setup import build_model
from bertlab.train.step import LinearSchedule, make_schedule


def budgeted_fit(model, data, hooks=None, **changes):
    settings = dict(model=model, batch_size=8, num_epochs=50, max_eval_examples=64, precision="fp32",
                    lr=1e-3, seed=0, device="cpu", time_budget_s=4.0)
    cfg = TrainConfig(**{**settings, **changes})
    start = time.monotonic()
    result = fit(build_model(cfg, data.num_labels), hub.load_tokenizer(model), data, cfg, hooks, progress=False)
    return result, time.monotonic() - start


def test_linear_schedule_is_warmup_linear_until_replanned():
    schedule = LinearSchedule(0.1, 50)
    assert [schedule(s) for s in range(52)] == [warmup_linear(s, 5, 50) for s in range(52)]
    no_warmup = LinearSchedule(0.0, 7)
    assert [no_warmup(s) for s in range(8)] == [warmup_linear(s, 0, 7) for s in range(8)]


@pytest.mark.parametrize("step, new_total", [(20, 30), (20, 80), (3, 40), (3, 12), (0, 10)])
def test_a_replanned_schedule_never_jumps_and_ends_at_zero(step, new_total):
    schedule = LinearSchedule(0.1, 50)
    before = schedule(step)
    schedule.replan(step, new_total)
    if step:
        assert schedule(step) == pytest.approx(before)  # from where it was
    else:
        assert [schedule(s) for s in range(new_total + 1)] == [warmup_linear(s, 1, new_total)
                                                                for s in range(new_total + 1)]
    values = [schedule(s) for s in range(max(step, 5), new_total + 1)]  # after the warmup: down to 0
    assert values[-1] == 0.0 and all(a >= b for a, b in zip(values, values[1:]))


def test_the_plan_is_saved_with_the_scheduler():
    params = [torch.nn.Parameter(torch.zeros(1))]
    scheduler = make_schedule(torch.optim.SGD(params, lr=1.0), 0.1, 100)
    scheduler.lr_lambdas[0].replan(40, 60)
    restored = make_schedule(torch.optim.SGD(params, lr=1.0), 0.1, 100)
    restored.load_state_dict(scheduler.state_dict())
    assert [restored.lr_lambdas[0](s) for s in range(61)] == [scheduler.lr_lambdas[0](s) for s in range(61)]


def test_fit_with_a_budget_stops_within_it_and_its_schedule_reaches_its_end(tiny, reviews, capsys):
    """4,000 sentences x 50 epochs would take an hour; 4 s must plan a fraction of it."""
    result, seconds = budgeted_fit(tiny, reviews)
    m = result.metrics
    assert "time budget 4 s" in capsys.readouterr().out
    assert seconds < 4.0 + 3.0, f"fit took {seconds:.1f} s on a budget of 4 s"  # generous: a loaded machine
    assert 1 <= m["steps"] == m["planned_steps"] < m["wanted_steps"]
    assert result.history[-1]["step"] == m["steps"]
    assert result.history[-1]["lr"] == 0.0  # the schedule ran to its end, it was not cut off
    assert m["fit_s"] <= seconds and "test_accuracy" in m and "challenge_accuracy" in m


def test_fit_replans_when_the_steps_slow_down(tiny, reviews, capsys):
    """From step 10 on, each forward sleeps 20 ms: the plan made at the warm-up's speed no
    longer fits, so fit re-plans, and still ends in time with the rate at 0."""
    def slow_after_ten(state, batch):
        if state.global_step >= 10:
            time.sleep(0.02)

    result, seconds = budgeted_fit(tiny, reviews, Hooks(before_forward=slow_after_ten))
    m = result.metrics
    assert m["replans"] >= 1
    assert seconds < 4.0 + 3.0
    assert result.history[-1]["lr"] == 0.0 and m["steps"] == m["planned_steps"]


def test_a_budget_that_fits_every_step_changes_nothing(tiny, reviews):
    """A budget the configured steps fit in trains exactly as without one (same weights)."""
    small = dict(max_train_examples=32, num_epochs=1, max_eval_examples=16)
    with_budget, _ = budgeted_fit(tiny, reviews, time_budget_s=120.0, **small)
    without, _ = budgeted_fit(tiny, reviews, time_budget_s=0.0, **small)
    assert with_budget.metrics["planned_steps"] == with_budget.metrics["wanted_steps"] == 4
    a, b = with_budget.model.state_dict(), without.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_negative_budget_is_one_sentence():
    with pytest.raises(ParameterError, match="time_budget_s must be at least 0"):
        TrainConfig(time_budget_s=-5).validate()


def test_a_budgeted_fit_on_your_own_glue_style_folder(tiny, tmp_path):
    """Your own data: a generated GLUE-style folder of long-tail sentences (train.tsv, dev.tsv,
    test.tsv), loaded by `setup` as notebook 11 loads it; 3 s must plan a part of 6 epochs."""
    from bertlab.synth import longtail
    from bertlab.train import setup

    folder = longtail.write(tmp_path / "mine", count=2000)
    cfg = TrainConfig(model=tiny, dataset=str(folder), batch_size=16, num_epochs=6, max_eval_examples=50,
                      precision="fp32", seed=0, device="cpu", time_budget_s=3.0)
    model, tokenizer, data = setup(cfg)
    start = time.monotonic()
    m = fit(model, tokenizer, data, cfg, progress=False).metrics
    seconds = time.monotonic() - start
    assert seconds < 3.0 + 3.0, f"fit took {seconds:.1f} s on a budget of 3 s"
    assert 1 <= m["steps"] == m["planned_steps"] < m["wanted_steps"] == 6 * 2000 // 16
    assert 0.0 <= m[f"{data.eval_split}_accuracy"] <= 1.0


def test_at_the_deadline_fit_stops_then_evaluates_and_checkpoints(tiny, reviews, tmp_path, capsys):
    """One step that hangs for most of the budget: no plan survives it, so fit stops before the
    next step, and still scores the test split and writes its resumable checkpoint."""
    from bertlab.train import checkpoint

    start = time.monotonic()

    def hang_at_step_3(state, batch):
        if state.global_step == 3:  # until 0.3 s before the deadline: less than one step (and the scoring) left
            time.sleep(max(0.0, start + 5.0 - 0.3 - time.monotonic()))

    result, seconds = budgeted_fit(tiny, reviews, Hooks(before_forward=hang_at_step_3), time_budget_s=5.0,
                                   output_dir=str(tmp_path / "run"))
    m = result.metrics
    assert "the deadline is near, so the run ends at step" in capsys.readouterr().out
    assert m["steps"] == 4 and m["planned_steps"] == 4  # the hanging step finished; no step after it
    assert seconds < 5.0 + 3.0 and "test_accuracy" in m
    saved = checkpoint.read_state(tmp_path / "run" / "last")
    assert saved["state"]["global_step"] == 4 and saved["state"]["evaluated_step"] == 4
