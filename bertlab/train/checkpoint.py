"""Checkpoints that survive an interruption and resume to the same result.

Derived in notebook 11. A checkpoint is a folder:

    model.safetensors    the weights (safetensors: plain tensors, no code runs on load)
    trainer_state.pt     optimizer + scheduler state and the random number generators'
                         states: only tensors and plain values, read back with
                         torch.load(weights_only=True), which refuses anything else
    state.json           where training stood: epoch, step, best score, history, config

It is written atomically: everything goes to a temporary folder next to the target, which
is then renamed into place, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from bertlab import hub
from bertlab.errors import DataError


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished folder `tmp` to `target`, replacing an older one.

    A folder cannot be swapped in one rename, so the old one is first renamed aside
    (`target.old`); `find` falls back to it if a crash strikes between the two renames.
    """
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    if old.exists():
        shutil.rmtree(old)


def _temporary(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def rng_states() -> dict[str, Any]:
    """The random states training draws from (dropout uses torch's; Python's for completeness)."""
    version, state, gauss = random.getstate()
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": [version, list(state), gauss]}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights as contiguous CPU tensors (safetensors' requirement).

    A copy even on the CPU, where `.cpu()` would return the live tensors: the best weights
    kept in memory must not follow the training steps after them.
    """
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def save(
    folder: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    scaler: Any = None,
) -> None:
    """Write a resumable checkpoint to `folder` atomically. `state` must be JSON-serialisable."""
    target = Path(folder)
    tmp = _temporary(target)
    save_file(model_state(model), str(tmp / "model.safetensors"))
    trainer = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_states(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else {},
    }
    torch.save(trainer, tmp / "trainer_state.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))  # atomic with the folder swap below
    _replace_dir(tmp, target)


def find(folder: str | os.PathLike) -> Path | None:
    """The checkpoint folder to resume from (or its `.old` twin after a crash), or None."""
    target = Path(folder)
    for candidate in (target, target.with_name(target.name + ".old")):
        if (candidate / "state.json").exists():
            return candidate
    return None


def load(
    folder: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any = None,
) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG states from `folder`; return its `state`."""
    path = find(folder)
    if path is None:
        raise DataError(f"There is no checkpoint in {folder}; train without resume first.")
    weights = load_file(str(path / "model.safetensors"))
    model.load_state_dict(weights, strict=True)
    trainer = torch.load(path / "trainer_state.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    if scaler is not None and trainer["scaler"]:
        scaler.load_state_dict(trainer["scaler"])
    set_rng_states(trainer["rng"])
    return json.loads((path / "state.json").read_text())


def save_pretrained(folder: str | os.PathLike, model: Any, tokenizer: Any) -> None:
    """Write a model folder that `bertlab.hub.load_classifier(folder)` loads, atomically."""
    target = Path(folder)
    tmp = _temporary(target)
    with hub.quiet():  # no "Writing model shards" bar
        model.save_pretrained(tmp)  # config.json + model.safetensors
        tokenizer.save_pretrained(tmp)
    _replace_dir(tmp, target)
