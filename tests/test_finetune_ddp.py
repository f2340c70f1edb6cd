"""``python -m bertlab finetune`` alone and under torchrun with two CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from bertlab.train.bench import save_random_model


def finetune_args(model: str, out: str) -> list[str]:
    return ["-m", "bertlab", "finetune", "--model", model, "--dataset", "reviews",
            "--max-train-examples", "32", "--max_eval_examples", "16", "--batch-size", "4",
            "--num-epochs", "1", "--eval-every", "2", "--precision", "fp32", "--lr", "1e-3", "--device", "cpu",
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


def test_finetune_under_torchrun_with_two_cpu_processes(tmp_path):
    model = save_random_model(tmp_path / "tiny", "tiny")
    out = str(tmp_path / "ddp")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", str(free_port())]
    done = run(torchrun + finetune_args(model, out))
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["train_samples_per_s"] > 0
    assert metrics["_meta"]["world_size"] == 2
    # 32 examples, 4 per process and step, 2 processes: 4 steps; printed once (rank 0 only)
    assert done.stdout.count("steps: 4") == 1, done.stdout
    state = json.loads((tmp_path / "ddp" / "ckpt" / "last" / "state.json").read_text())
    assert state["state"]["global_step"] == 4
    assert (tmp_path / "ddp" / "ckpt" / "best" / "model.safetensors").exists()


def test_finetune_rejects_a_bad_flag_in_one_sentence(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "bertlab", "finetune", "--lr", "-1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "lr must be greater than 0" in done.stderr
