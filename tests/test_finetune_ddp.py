"""``python -m bertlab finetune`` alone and under torchrun with two CPU processes (gloo): the same result."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from bertlab.env import PROFILES
from bertlab.train import TrainConfig, fit, setup
from bertlab.train.bench import save_random_model


def finetune_args(model: str, out: str, batch_size: int) -> list[str]:
    return ["-m", "bertlab", "finetune", "--model", model, "--dataset", "reviews",
            "--max-train-examples", "8", "--max_eval_examples", "16", "--batch-size", str(batch_size),
            "--num-epochs", "4", "--eval-every", "2", "--precision", "fp32", "--lr", "1e-3", "--device", "cpu",
            "--output-dir", f"{out}/ckpt", "--metrics-path", f"{out}/metrics.json"]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    """8 examples, 4 epochs: one step per epoch over all 8, either 4 on each of two gloo
    processes (DDP averages their gradients) or 8 in one process (`fit` here). Without dropout
    (whose masks differ between processes) the two runs end with the same weights and scores."""
    model = save_random_model(tmp_path / "tiny", "tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", str(free_port())]
    done = run(torchrun + finetune_args(model, str(tmp_path / "ddp"), batch_size=4))
    # the reference: the same settings in this process, 8 examples per step
    cfg = TrainConfig(model=model, max_train_examples=8, max_eval_examples=16, batch_size=8, num_epochs=4,
                      eval_every=2, precision="fp32", lr=1e-3, device="cpu", output_dir=str(tmp_path / "one" / "ckpt"))
    one = fit(*setup(cfg), cfg, progress=False)
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    meta = metrics["_meta"]
    assert meta["world_size"] == 2 and meta["source"] == "cli" and meta["profile"] in PROFILES[1:]
    assert done.stdout.count("steps: 4") == 1, done.stdout  # printed once (rank 0 only)
    state = json.loads((tmp_path / "ddp" / "ckpt" / "last" / "state.json").read_text())["state"]
    assert state["global_step"] == one.metrics["steps"] == 4
    assert state["best_step"] == one.metrics["best_step"]
    for name in ("test_accuracy", "best_validation_accuracy"):
        assert metrics[name] == one.metrics[name], name
    for folder in ("last", "best"):
        ddp = load_file(str(tmp_path / "ddp" / "ckpt" / folder / "model.safetensors"))
        one = load_file(str(tmp_path / "one" / "ckpt" / folder / "model.safetensors"))
        assert ddp.keys() == one.keys()
        for key in one:
            torch.testing.assert_close(ddp[key], one[key], atol=1e-5, rtol=0, msg=f"{folder}: {key}")
    trained = load_file(str(tmp_path / "one" / "ckpt" / "last" / "model.safetensors"))
    initial = load_file(str(Path(model) / "model.safetensors"))
    assert any(not torch.equal(trained[k], initial[k]) for k in initial)  # it did train


def test_finetune_rejects_a_bad_flag_in_one_sentence(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "bertlab", "finetune", "--lr", "-1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "lr must be greater than 0" in done.stderr


def test_the_readmes_torchrun_line_offline_says_why_once(tmp_path):
    """README.md's torchrun line with no network, on 2 gloo processes: every process meets the
    same missing model, and the sentence is printed once (rank 0), not once per process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(free_port()), "-m", "bertlab", "finetune", "--model", "bert-base-uncased",
                           "--dataset", "hf:nyu-mll/glue:sst2", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    printed = done.stdout + done.stderr
    assert done.returncode != 0
    errors = [line for line in printed.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "may be offline" in errors[0] and errors[0].endswith("."), printed[-3000:]
