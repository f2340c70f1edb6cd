"""Nothing silently wrong (issue 25): each case here once gave a plausible result, or no word
at all, where something had gone wrong. Now each says so in one sentence, or does the right thing.

1. a loss that became nan stops `fit`, the naive loop and notebook 04's optimizer, naming lr;
2. a file whose header names a column twice is refused;
3. integer labels such as 0 and 100000 make a 2-way head, their values kept as names;
4. SIGTERM checkpoints a run and prints how to resume, as Ctrl-C does;
5. a resume whose last/state.json is missing or damaged says so and offers best/;
6. Ctrl-C during the final evaluation says that training finished and how to score it.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bertlab import hub, interrupts, optim
from bertlab.data import load_text_dataset
from bertlab.errors import DataError, ModelFileError, TrainingDiverged
from bertlab.train import Hooks, TrainConfig, checkpoint, cli, fit, loop, setup
from bertlab.train.naive import naive_fit

SMALL = dict(max_train_examples=24, max_eval_examples=8, batch_size=8, num_epochs=1, precision="fp32",
             lr=1e-3, device="cpu")  # 3 steps of the bundled reviews



def saved_step(out: Path) -> int:
    return json.loads((out / "last" / "state.json").read_text())["state"]["global_step"]


# -- 1. divergence --------------------------------------------------------------------------

def test_fit_stops_at_a_nan_loss_naming_the_step_and_lr_and_saves_no_nan_weights(tiny, tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(model=tiny, **SMALL, eval_every=1, output_dir=str(out))
    model, tokenizer, data = setup(cfg)

    def nan_weights_after_step_1(state):  # what too high a learning rate does, in one step
        if state.global_step == 1:
            with torch.no_grad():
                model.classifier.weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"^The loss became nan at step 2 with lr 0.001: training "
                                               r"diverged; lower lr \(2e-5 to 5e-5 .*\)"):
        fit(model, tokenizer, data, cfg, hooks=Hooks(after_step=nan_weights_after_step_1), progress=False)
    assert saved_step(out) == 1  # the checkpoint before the nan, not one of nan weights


def test_the_naive_loop_stops_at_a_nan_loss(tiny):
    cfg = TrainConfig(model=tiny, **SMALL)
    model, tokenizer, data = setup(cfg)
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"The loss became nan at step 1 with lr 0.001: training diverged"):
        naive_fit(model, tokenizer, data, cfg, progress=False)


def test_notebook_04s_optimizer_stops_when_the_gradients_become_nan():
    """Notebook 04 trains a bag-of-words MLP with `bertlab.optim.AdamW` in its own loop;
    `run 04 -p lr 1e6` reached nan weights and a guess's accuracy without a word."""
    gen = torch.Generator().manual_seed(0)
    X = (torch.rand(64, 40, generator=gen) < 0.2).float()  # (N, V) word-presence features
    y = (X[:, :20].sum(1) > X[:, 20:].sum(1)).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(40, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = optim.AdamW(model.parameters(), lr=1e6)
    with pytest.raises(TrainingDiverged, match=r"^The gradients became (nan|inf) at step \d+ with lr 1e\+06: "
                                               r"training diverged; lower lr"):
        for _ in range(5):
            for start in range(0, 64, 16):
                loss = F.cross_entropy(model(X[start:start + 16]), y[start:start + 16])
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())  # stopped before any weight became nan


# -- 2. a column named twice ------------------------------------------------------------------

@pytest.mark.parametrize("name, content, twice", [
    ("twice_text.csv", "text,label,text\n" + "".join(f"good {i},1,bad {i}\nbad {i},0,good {i}\n" for i in range(5)),
     "text"),
    ("twice_label.csv", "text,label,label\n" + "".join(f"good {i},1,0\nbad {i},0,0\n" for i in range(5)), "label"),
    ("twice_key.jsonl", "".join(json.dumps({"text": f"good {i}", "label": 1})[:-1] + ', "label": 0}\n'
                                for i in range(5)), "label"),
])
def test_a_column_named_twice_is_refused(tmp_path, name, content, twice):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=rf"^{name}, line 1: the column '{twice}' is named twice "
                                        r"\(.*\), and only one of the two could be read"):
        load_text_dataset(str(tmp_path / name))


# -- 3. integer labels ------------------------------------------------------------------------

@pytest.mark.parametrize("labels", [(0, 100000), (7, 3, 5)])
def test_integer_labels_are_numbered_in_order_and_keep_their_values_as_names(tmp_path, labels):
    path = tmp_path / "numbers.csv"
    rows = [f"sentence {i} of class {lab},{lab},{split}" for lab in labels
            for i, split in enumerate(["train"] * 4 + ["validation", "test"])]
    path.write_text("text,label,split\n" + "\n".join(rows) + "\n")
    ds = load_text_dataset(str(path))
    ordered = sorted(labels)
    assert ds.label_names == [str(lab) for lab in ordered] and ds.num_labels == len(labels)
    for ex in ds.train + ds.validation + ds.test:  # each example's class is its value's place in order
        assert ds.label_names[ex.label] == ex.text.split()[-1]
    assert any("numbered 0 to" in note for note in ds.notes)


def test_labels_already_0_to_k_minus_1_and_hidden_test_labels_load_as_before(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("text,label,split\n" + "".join(f"s{i} {lab},{lab},{split}\n" for lab in (2, 0, 1)
                                                   for i, split in enumerate(["train", "validation", "test"])))
    ds = load_text_dataset(str(path))
    assert ds.label_names == ["0", "1", "2"] and not ds.notes
    assert all(ex.label == int(ex.text.split()[-1]) for ex in ds.train + ds.validation + ds.test)
    glue = tmp_path / "glue"
    glue.mkdir()
    for split, labels in (("train", (5, 9, 5, 9)), ("dev", (9, 5)), ("test", (-1, -1))):
        (glue / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{split} {i}\t{lab}\n"
                                                                      for i, lab in enumerate(labels)))
    ds = load_text_dataset(str(glue))
    assert ds.label_names == ["5", "9"] and [ex.label for ex in ds.train] == [0, 1, 0, 1]
    assert [ex.label for ex in ds.test] == [-1, -1] and ds.eval_split == "validation"


# -- 4. SIGTERM -------------------------------------------------------------------------------

def test_sigterm_checkpoints_and_prints_the_resume_command(tiny, tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "terminated.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        from bertlab.__main__ import main
        from bertlab.train import Hooks, cli, loop

        def terminate_at_step_3(state):
            if state.global_step == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # what `kill` or a job scheduler sends

        cli.fit = lambda *a, **k: loop.fit(*a, hooks=Hooks(after_step=terminate_at_step_3), **k)
        sys.exit(main(["finetune", *sys.argv[1:]]))
    """))
    flags = ["--model", tiny, "--output-dir", str(out), "--max-train-examples", "48", "--batch-size", "8",
             "--max-eval-examples", "8", "--num-epochs", "1", "--precision", "fp32", "--lr", "1e-3", "--device", "cpu"]
    done = subprocess.run([sys.executable, str(script), *flags], capture_output=True, text=True, timeout=300)
    assert done.returncode == 128 + signal.SIGTERM, (done.returncode, done.stderr[-2000:])  # 143, as shells expect
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-2000:]
    assert f"interrupted at step 3 of 6; checkpoint saved in {out / 'last'}; resume with: " in done.stdout
    assert saved_step(out) == 3
    before = signal.getsignal(signal.SIGTERM)  # the handler lives only as long as the run
    with interrupts.terminate_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) != before
    assert signal.getsignal(signal.SIGTERM) == before
    seen = []

    def run_elsewhere():
        with interrupts.terminate_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    elsewhere = threading.Thread(target=run_elsewhere)
    elsewhere.start()  # outside the main thread Python allows no handler: nothing changes, no error
    elsewhere.join()
    assert seen == [before]


# -- 5. resume without a readable state.json --------------------------------------------------

@pytest.mark.parametrize("damage", ["deleted", "garbled"])
def test_a_resume_without_a_readable_state_says_so_and_offers_best(tiny, tmp_path, damage):
    out = tmp_path / "run"
    cfg = TrainConfig(model=tiny, **SMALL, max_steps=2, eval_every=1, output_dir=str(out))
    fit(*setup(cfg), cfg, progress=False)
    state = out / "last" / "state.json"
    state.unlink() if damage == "deleted" else state.write_text("{")
    again = TrainConfig(**{**cfg.to_dict(), "resume": True})
    with pytest.raises(ModelFileError, match=rf"^The checkpoint {re.escape(str(out / 'last'))} is damaged "
                                             r"\(state.json .*\); start a new run from the best weights saved so far: "
                                             rf"--model {re.escape(str(out / 'best'))} .*or start again with "
                                             r"--overwrite \(overwrite=True\)\.$"):
        fit(*setup(again), again, progress=False)
    assert hub.load_classifier(str(out / "best")).config.num_labels == 2  # what it offers loads


# -- 6. Ctrl-C during the final evaluation ----------------------------------------------------

def test_ctrl_c_in_the_final_evaluation_says_training_finished(tiny, tmp_path, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    cfg = TrainConfig(model=tiny, **SMALL, output_dir=str(out))
    model, tokenizer, data = setup(cfg)
    monkeypatch.setattr(loop, "final_metrics", ctrl_c)
    stop = None
    try:  # caught here: a bare KeyboardInterrupt reaching pytest would end the whole session
        fit(model, tokenizer, data, cfg, progress=False)
    except KeyboardInterrupt as err:
        stop = err
    assert isinstance(stop, checkpoint.Interrupted), repr(stop)
    assert re.match(rf"Training stopped during the final evaluation, after step 3 of 3: the trained run is in "
                    rf"{re.escape(str(out / 'last'))} and its best weights in {re.escape(str(out / 'best'))}; "
                    r"resume with resume=True \(the command line: --resume\) to evaluate it", str(stop)), str(stop)
    trained = json.loads((out / "last" / "state.json").read_text())["state"]
    parser = argparse.ArgumentParser()  # the command line: no "before training started"
    cli.add_arguments(parser)
    capsys.readouterr()
    flags = ["--model", tiny, "--output-dir", str(tmp_path / "cli"), "--max-train-examples", "24", "--batch-size",
             "8", "--max-eval-examples", "8", "--num-epochs", "1", "--precision", "fp32", "--lr", "1e-3",
             "--device", "cpu"]
    assert cli.main(parser.parse_args(flags)) == 130
    printed = capsys.readouterr().out
    assert "before training started" not in printed
    assert ("interrupted during the final evaluation, after the last step (3 of 3); the trained run is in "
            f"{tmp_path / 'cli' / 'last'}; to evaluate it without training again: python -m bertlab finetune") in printed
    monkeypatch.undo()
    resumed = TrainConfig(**{**cfg.to_dict(), "resume": True})  # what the sentence says to do: scored, not retrained
    result = fit(*setup(resumed), resumed, progress=False)
    assert result.metrics["steps"] == 3 and result.history == trained["history"] and "test_accuracy" in result.metrics
