"""The fine-tuning command's errors are one sentence, before any training, and never lose work:
an earlier run is not replaced, a resume checks what it resumes, a damaged checkpoint is named,
Ctrl-C checkpoints and says how to resume, and `bench --steps 0` is refused."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import pytest
import torch

from bertlab.errors import ModelFileError, ParameterError
from bertlab.train import Hooks, TrainConfig, bench, checkpoint, cli, fit, setup

FLAGS = ["--max-train-examples", "24", "--max-eval-examples", "8", "--batch-size", "8", "--num-epochs", "1",
         "--eval-every", "2", "--precision", "fp32", "--lr", "1e-3", "--device", "cpu"]



def finetune(model: str, *flags: str) -> int:
    """`python -m bertlab finetune --model MODEL FLAGS... flags...`, in this process."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.main(parser.parse_args(["--model", model, *FLAGS, *flags]))


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything is loaded or trained."""
    def setup_must_not_run(cfg):
        raise AssertionError("setup ran: the bad path was not refused before training")

    monkeypatch.setattr(cli, "setup", setup_must_not_run)


def saved_step(out: Path) -> int:
    return json.loads((out / "last" / "state.json").read_text())["state"]["global_step"]


def test_an_earlier_run_is_not_replaced_without_resume_or_overwrite(tiny, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert finetune(tiny, "--output-dir", str(out)) == 0 and saved_step(out) == 3
    monkeypatch.setattr(cli, "setup", lambda cfg: pytest.fail("setup ran"))
    with pytest.raises(ParameterError, match=r"already holds a run \(last/, best/\); continue it with --resume "
                                             r".*--overwrite .*another folder"):
        finetune(tiny, "--output-dir", str(out), "--max-steps", "1")
    assert saved_step(out) == 3  # untouched
    monkeypatch.undo()
    assert finetune(tiny, "--output-dir", str(out), "--max-steps", "1", "--overwrite") == 0
    assert saved_step(out) == 1  # a new run, from scratch
    with pytest.raises(ParameterError, match="choose one"):
        TrainConfig(output_dir=str(out), resume=True, overwrite=True).validate()


def test_a_file_as_output_dir_or_a_folder_as_metrics_path_is_refused_before_training(tiny, tmp_path, no_training):
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(ParameterError, match="output_dir .*notes.txt is a file, not a folder"):
        finetune(tiny, "--output-dir", str(tmp_path / "notes.txt"))
    with pytest.raises(ParameterError, match="--metrics-path .* is a folder; give a file name"):
        finetune(tiny, "--metrics-path", str(tmp_path))
    cfg = TrainConfig(model=tiny, output_dir=str(tmp_path / "notes.txt"), device="cpu")
    with pytest.raises(ParameterError, match="is a file"):  # `fit` checks too, before its first step
        fit(torch.nn.Linear(1, 1), None, None, cfg)


def test_a_resume_refuses_settings_that_would_change_the_run(tiny, tmp_path):
    out = str(tmp_path / "run")
    cfg = TrainConfig(model=tiny, max_train_examples=24, max_eval_examples=8, batch_size=8, max_steps=2,
                      eval_every=1, precision="fp32", lr=1e-3, device="cpu", output_dir=out)
    model, tokenizer, data = setup(cfg)
    fit(model, tokenizer, data, cfg, progress=False)
    changed = TrainConfig(**{**cfg.to_dict(), "resume": True, "lr": 2e-3, "batch_size": 4})
    with pytest.raises(ParameterError, match=r"other settings \(batch_size: 8 -> 4; lr: 0.001 -> 0.002\)"):
        fit(*setup(changed)[:2], data, changed, progress=False)
    # where the files go and how often the run is scored change no weight: allowed
    same = TrainConfig(**{**cfg.to_dict(), "resume": True, "eval_every": 0, "max_eval_examples": 4})
    assert fit(*setup(same)[:2], data, same, progress=False).metrics["steps"] == 2


def test_a_damaged_checkpoint_is_named_with_what_to_do(tiny, tmp_path):
    out = tmp_path / "run"
    assert finetune(tiny, "--output-dir", str(out), "--max-steps", "2") == 0
    state_file = out / "last" / "trainer_state.pt"
    whole = state_file.read_bytes()
    state_file.write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with pytest.raises(ModelFileError, match=r"The checkpoint .*last is damaged \(trainer_state.pt has [\d,]+ bytes, "
                                             r"[\d,]+ were written\); start a new run from the best weights"):
        finetune(tiny, "--output-dir", str(out), "--resume")
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 0xFF  # same size, one byte changed
    state_file.write_bytes(bytes(flipped))
    (out / "last.old").mkdir()  # a previous checkpoint to fall back on
    with pytest.raises(ModelFileError, match=r"trainer_state.pt does not match its checksum\); resume from the "
                                             r"previous checkpoint instead: delete .* and rename last.old to last"):
        checkpoint.read_state(out / "last")


def test_ctrl_c_saves_a_checkpoint_and_prints_the_command_that_resumes(tiny, tmp_path, monkeypatch, capsys):
    whole = tmp_path / "whole"
    assert finetune(tiny, "--output-dir", str(whole)) == 0
    real_fit = cli.fit

    def ctrl_c_after_step_1(state):
        if state.global_step == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "fit", lambda *a, **k: real_fit(*a, hooks=Hooks(after_step=ctrl_c_after_step_1), **k))
    capsys.readouterr()
    out = tmp_path / "stopped"
    assert finetune(tiny, "--output-dir", str(out)) == 130
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "Traceback" not in printed[0], printed
    assert printed[0].startswith(f"interrupted at step 1 of 3; checkpoint saved in {out / 'last'}; resume with: "
                                 "python -m bertlab finetune --model ")
    assert saved_step(out) == 1
    monkeypatch.undo()
    command = shlex.split(printed[0].split("resume with: ")[1])
    assert command[:4] == ["python", "-m", "bertlab", "finetune"] and command[-1] == "--resume"
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.main(parser.parse_args(command[4:])) == 0  # the printed command, as it is
    done, reference = (json.loads((p / "last" / "state.json").read_text())["state"] for p in (out, whole))
    assert [h["loss"] for h in done["history"]] == [h["loss"] for h in reference["history"]]
    # `fit` itself, without an output_dir: one sentence, and a KeyboardInterrupt still
    cfg = TrainConfig(model=tiny, max_train_examples=24, batch_size=8, precision="fp32", device="cpu")
    with pytest.raises(checkpoint.Interrupted, match="stopped at step 1 of 9: nothing was saved"):
        fit(*setup(cfg), cfg, hooks=Hooks(after_step=ctrl_c_after_step_1), progress=False)


def test_bench_refuses_zero_timed_steps(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    with pytest.raises(ParameterError, match="steps must be at least 1, not 0"):
        bench.main(parser.parse_args(["--size", "tiny", "--steps", "0", "--device", "cpu"]))
    assert "timing" not in capsys.readouterr().out
