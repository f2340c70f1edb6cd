"""A time budget for `fit`: measure, plan, re-plan, and stop in time.

Derived in notebook 11 (section 7). A run given ``time_budget_s`` seconds (`TrainConfig`)
must end inside them, its evaluations and its last checkpoint included, with a learning
rate schedule that reaches its end (a run cut off mid-schedule stops at a high learning
rate, which is a worse model than a shorter schedule run to 0). So `fit`:

1. **warms up**: times a few real training steps on a random sample of the run's own
   batches, with the run's own settings (precision, batch size, packing, compile), at
   learning rate 0, so the weights stay put; then it forgets the optimizer's moments and
   restores the random state. The first of them pays the one-time costs (allocation,
   compilation); the others give the seconds per step. It also times the evaluation of a
   small sample, for the seconds per example scored.
2. **plans**: the steps that fit in the time left, after the evaluations the run will make
   (one per epoch or per ``eval_every`` steps, and the final test scores) and a margin; at
   most the steps that ``num_epochs`` asks for. The schedule is sized to that plan.
3. **re-plans**: after every step it compares the time left with what the remaining steps
   need at the speed of the recent steps. When the two drift apart by more than a tenth,
   the plan moves, and the learning rate falls from where it is to 0 at the new end
   (`bertlab.train.step.LinearSchedule.replan`).
4. **stops**: should the deadline come anyway, the run stops before the next step, then
   evaluates and checkpoints as a finished run does.

The functions below act on a run of `fit` (`bertlab.train.loop.Trainer`, passed as `run`).

A budget is a plan, not a promise: on a machine whose speed changes a lot (another job
starting), the re-plans follow it, and what a step costs after the last check is the error.
"""

from __future__ import annotations

import copy
import math
import random
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bertlab.train import checkpoint, throughput
from bertlab.train.evaluation import evaluate

MARGIN = 0.03  # of the budget, kept free: clock noise, a checkpoint slower than the last
MARGIN_S = 0.5  # and at least this many seconds: a short budget on a busy machine
DRIFT = 0.10  # re-plan when the remaining steps' time and the time left differ by this much
RECENT = 64  # steps whose mean gives the current speed (bucketed batches of long and short sentences vary)
LAST = 8  # the last few steps, believed when they are slower than that mean


@dataclass
class Budget:
    """The clock of one budgeted run and the arithmetic of its plan (all times in seconds)."""

    seconds: float
    start: float = field(default_factory=time.monotonic)
    step_s: float = 0.0  # seconds per training step (warm-up, then the recent steps)
    example_s: float = 0.0  # seconds per example scored (warm-up, then the evaluations)
    planned_steps: int = 0
    replans: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT))

    def margin(self) -> float:
        """Seconds kept free at the end: `MARGIN` of the budget, at least `MARGIN_S`."""
        return max(MARGIN * self.seconds, MARGIN_S)

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.seconds - (time.monotonic() - self.start)

    def spent(self) -> float:
        """Seconds since the clock started."""
        return time.monotonic() - self.start

    def steps_that_fit(self, done: int, evaluations: int, examples_per_eval: int, final_examples: int) -> int:
        """How many steps in all (counting the `done` ones) fit before the deadline, leaving
        room for `evaluations` more evaluations of `examples_per_eval` examples, the final
        scoring of `final_examples` and the margin."""
        reserve = self.example_s * (evaluations * examples_per_eval + final_examples) + self.margin()
        room = self.left() - reserve
        return done + max(0, math.floor(room / self.step_s)) if self.step_s > 0 else done

    def warmed_up(self, step_times: list[float], eval_s: float, eval_examples: int) -> None:
        """Take the warm-up's measurements: the step times after the first, one evaluation."""
        timed = step_times[1:] or step_times
        self.step_s = statistics.median(timed)
        self.example_s = eval_s / max(1, eval_examples)

    def add_step(self, seconds: float) -> None:
        """One training step's seconds. The speed from here on is the mean of the recent steps,
        or of the last few when those are slower: a machine that slows down is believed at once
        (a plan too long would be cut at the deadline, mid-schedule), one that speeds up gradually."""
        self.recent.append(seconds)
        if len(self.recent) >= 3:
            last = list(self.recent)[-LAST:]
            self.step_s = max(statistics.fmean(self.recent), statistics.fmean(last))

    def add_evaluation(self, seconds: float, examples: int) -> None:
        """A real evaluation's seconds (with its checkpoint): slower than the warm-up's, it counts."""
        if examples:
            self.example_s = max(self.example_s, seconds / examples)

    def drifted(self, done: int, planned: int, evaluations: int, examples_per_eval: int, final_examples: int) -> bool:
        """True when the plan's remaining steps no longer match the time left (by `DRIFT`)."""
        need = (planned - done) * self.step_s + self.example_s * (evaluations * examples_per_eval + final_examples)
        room = self.left() - self.margin()
        return abs(need - room) > DRIFT * max(room, 1e-9)

    def must_stop(self, examples_to_score: int, steps: int = 1) -> bool:
        """True when fewer than `steps` more steps fit before the margin and the last scoring
        (`examples_to_score`: the last evaluation's and the final scores' examples)."""
        return self.left() - self.margin() - self.example_s * examples_to_score < steps * self.step_s


def eval_sizes(run: Any, total: int) -> tuple[int, int, int]:
    """(evaluations still to come if the run ends at step `total`, examples in each, examples
    of the final scores)."""
    n = run.cfg.max_eval_examples or None
    every = run.cfg.eval_every or len(run.sampler)
    evaluations = max(0, total - run.state.global_step) // every + 1
    final = [getattr(run.data, getattr(run.data, "eval_split", "test"), None) or [], getattr(run.data, "challenge", None) or []]
    return evaluations, len((run.data.validation or [])[:n]), sum(len(split[:n]) for split in final)


def set_plan(run: Any, total: int) -> None:
    """Make `total` the run's last step: the schedule ends there, without a jump."""
    run.total_steps = run.state.planned_steps = run.budget.planned_steps = total
    lr_lambda = run.scheduler.lr_lambdas[0]  # one LinearSchedule shared by the parameter groups
    lr_lambda.replan(run.state.global_step, total)
    for group, base in zip(run.optimizer.param_groups, run.scheduler.base_lrs):
        group["lr"] = base * lr_lambda(run.state.global_step)
    if hasattr(run, "bar"):  # the progress bar, once the loop has one
        run.bar.total = total
        run.bar.refresh()


def plan(run: Any) -> int:
    """The steps that fit in the time left (at most the ones the settings ask for)."""
    total = run.total_steps
    for _ in range(2):  # the evaluations to come depend on the plan's length
        total = min(run.wanted_steps, run.budget.steps_that_fit(run.state.global_step, *eval_sizes(run, total)))
    return max(total, run.state.global_step + 1)  # one step at least, to have a model


def warm_up(run: Any, steps: int = 4, eval_examples: int = 32) -> None:
    """Time `steps` real steps at lr 0 (a random sample of the run's batches), then one
    evaluation; put optimizer, scaler and random state back; plan the run from the times."""
    pick = random.Random(run.cfg.seed)
    batches = pick.sample(run.sampler.all_batches(run.state.epoch), min(steps, len(run.sampler)))
    saved = copy.deepcopy(run.optimizer.state_dict()), run.scaler.state_dict(), checkpoint.rng_states()
    lrs = [group["lr"] for group in run.optimizer.param_groups]
    for group in run.optimizer.param_groups:
        group["lr"] = 0.0  # AdamW at lr 0 moves no weight, decay included
    times = []
    for indices in batches:
        start = time.perf_counter()
        run.step([run.train[i] for i in indices], timing=True)
        throughput.synchronize(run.device)
        times.append(time.perf_counter() - start)
    run.optimizer.load_state_dict(saved[0])
    for group, lr in zip(run.optimizer.param_groups, lrs):
        group["lr"] = lr
    if saved[1]:  # an enabled (fp16) scaler's state; a disabled one has none
        run.scaler.load_state_dict(saved[1])
    checkpoint.set_rng_states(saved[2])
    sample = pick.sample(run.train, min(eval_examples, len(run.train)))  # labels unused: speed only
    start = time.perf_counter()
    evaluate(run.model, run.tokenizer, sample, 64, run.cfg.max_length, run.device, run.precision)
    run.budget.warmed_up(times, time.perf_counter() - start, len(sample))
    set_plan(run, plan(run))
    print(f"time budget {run.budget.seconds:.0f} s: a {len(times)}-step warm-up ran {run.budget.step_s:.3f} s "
          f"per step, so {run.total_steps} of {run.wanted_steps} steps are planned "
          f"({run.budget.left():.0f} s left)")


def follow(run: Any) -> None:
    """After a step: re-plan when the speed drifted from the plan; end here at the deadline."""
    budget, done = run.budget, run.state.global_step
    if done >= run.total_steps:
        return
    _, per_eval, final = eval_sizes(run, done)
    if budget.must_stop(per_eval + final):
        print(f"time budget: the deadline is near, so the run ends at step {done} of {run.total_steps}")
        set_plan(run, done)
    elif budget.must_stop(per_eval + final, steps=2) and run.total_steps > done + 1:
        set_plan(run, done + 1)  # room for one step only: make it the schedule's last, ending at lr 0
    elif budget.drifted(done, run.total_steps, *eval_sizes(run, run.total_steps)):
        total = plan(run)
        # a plan that no longer fits always shrinks (else the deadline would cut it mid-schedule);
        # one with room to spare grows only by a tenth of what is left, or two steps at least
        if total < run.total_steps or total - run.total_steps >= max(2, 0.1 * (run.total_steps - done)):
            budget.replans += 1
            set_plan(run, total)
