"""Checkpoints that survive an interruption and resume to the same result.

Derived in notebook 11. A checkpoint is a folder:

    model.safetensors    the weights (safetensors: plain tensors, no code runs on load)
    trainer_state.pt     optimizer + scheduler state and the random number generators'
                         states: only tensors and plain values, read back with
                         torch.load(weights_only=True), which refuses anything else
    state.json           where training stood: epoch, step, best score, history, config
    checksums.json       each file's size and SHA-256, checked before anything is loaded

It is written atomically: everything goes to a temporary folder next to the target, which
is then renamed into place, so a crash mid-write leaves the previous checkpoint intact. A
file damaged later (a full disk, a copy cut short) fails its checksum: one sentence that
names it and offers the previous checkpoint or the best weights, never a traceback.

Ctrl-C during `fit` saves a checkpoint of the steps done and raises `Interrupted`, whose
one sentence says how to resume; SIGTERM (what `kill` and job schedulers send) does the same
(`bertlab.interrupts.terminate_as_interrupt`). `check_output_dir` guards the folder itself: a run never
silently replaces another's checkpoints, and a path that is a file is refused before any
training; a resume whose `last/` lost its state.json is refused too (`resumable`), rather than
quietly starting again at step 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from bertlab import hub
from bertlab.errors import DataError, ModelFileError, ParameterError

FILES = ("model.safetensors", "trainer_state.pt", "state.json")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `fit`: the run is checkpointed (with an output_dir) and says how to go on.

    `final`: the interrupt came after the last step, during the final evaluation; the
    checkpoint of the finished run is already in `folder`, and a resume scores it without training.
    """

    def __init__(self, step: int, total: int, folder: Path | None, final: bool = False):
        self.step, self.total, self.folder, self.final = step, total, folder, final
        if folder is None:
            how = "nothing was saved (no output_dir); give the run an output_dir to make it resumable"
        elif final:
            best = folder.parent / "best"
            kept = f" and its best weights in {best}" if best.exists() else ""
            how = (f"the trained run is in {folder}{kept}; resume with resume=True (the command line: --resume) "
                   "to evaluate it without training again")
        else:
            how = f"saved to {folder}; resume with resume=True (the command line: --resume)"
        when = f"during the final evaluation, after step {step} of {total}" if final else f"at step {step} of {total}"
        super().__init__(f"Training stopped {when}: {how}.")

    def _render_traceback_(self) -> list[str]:  # IPython shows this sentence, not a traceback
        return [f"Interrupted: {self}"]


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
    sums = {name: {"bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)} for name in FILES}
    (tmp / "checksums.json").write_text(json.dumps(sums, indent=1))
    _replace_dir(tmp, target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damaged(path: Path, what: str) -> ModelFileError:
    """The one sentence for a damaged checkpoint, offering what there is to fall back on."""
    old, best = path.with_name(path.name + ".old"), path.parent / "best"
    if old.exists() and old != path:
        offer = f"resume from the previous checkpoint instead: delete {path} and rename {old.name} to {path.name}"
    elif best.exists():
        offer = (f"start a new run from the best weights saved so far: --model {best} and another --output-dir, "
                 "or start again with --overwrite (overwrite=True)")
    else:
        offer = "start again with --overwrite (overwrite=True)"
    return ModelFileError(f"The checkpoint {path} is damaged ({what}); {offer}.")


def verify(path: Path) -> None:
    """Check every file of the checkpoint `path` against checksums.json; raise `damaged` if one differs.

    A checkpoint written before checksums existed has no checksums.json and is not checked.
    """
    if not (path / "checksums.json").exists():
        return
    try:
        sums = json.loads((path / "checksums.json").read_text())
    except (ValueError, OSError):
        raise damaged(path, "checksums.json is unreadable") from None
    for name, expected in sums.items():
        file = path / name
        if not file.exists():
            raise damaged(path, f"{name} is missing")
        size = file.stat().st_size
        if size != expected["bytes"]:
            raise damaged(path, f"{name} has {size:,} bytes, {expected['bytes']:,} were written")
        if _sha256(file) != expected["sha256"]:
            raise damaged(path, f"{name} does not match its checksum")


def read_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The `state` saved in the checkpoint at `folder` (or its `.old` twin), after `verify`."""
    path = find(folder)
    if path is None:
        raise DataError(f"There is no checkpoint in {folder}; train without resume first.")
    verify(path)
    try:
        return json.loads((path / "state.json").read_text())
    except (ValueError, OSError) as err:
        raise damaged(path, f"state.json is unreadable: {type(err).__name__}") from None


def find(folder: str | os.PathLike) -> Path | None:
    """The checkpoint folder to resume from (or its `.old` twin after a crash), or None."""
    target = Path(folder)
    for candidate in (target, target.with_name(target.name + ".old")):
        if (candidate / "state.json").exists():
            return candidate
    return None


def resumable(folder: str | os.PathLike) -> Path | None:
    """`find` for a run asked to resume: None where no checkpoint was ever written, but a
    `damaged` error where `folder` exists without its state.json (deleted, or a copy cut short),
    so that a resume never quietly starts again at step 0."""
    path = find(folder)
    if path is None and Path(folder).exists():
        raise damaged(Path(folder), "state.json is missing, so it cannot say where training stood")
    return path


def load(
    folder: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any = None,
) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG states from `folder`; return its `state`.

    Every file is checked first (`verify`); one that cannot be read raises `damaged` too.
    """
    state = read_state(folder)
    path = find(folder)
    try:
        weights = load_file(str(path / "model.safetensors"))
        trainer = torch.load(path / "trainer_state.pt", weights_only=True, map_location="cpu")
    except Exception as err:  # a checkpoint without checksums.json, damaged: safetensors', zip's or pickle's error
        raise damaged(path, f"{type(err).__name__} while reading it") from None
    model.load_state_dict(weights, strict=True)
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    if scaler is not None and trainer["scaler"]:
        scaler.load_state_dict(trainer["scaler"])
    set_rng_states(trainer["rng"])
    return state


def save_pretrained(folder: str | os.PathLike, model: Any, tokenizer: Any) -> None:
    """Write a model folder that `bertlab.hub.load_classifier(folder)` loads, atomically."""
    target = Path(folder)
    tmp = _temporary(target)
    with hub.quiet():  # no "Writing model shards" bar
        model.save_pretrained(tmp)  # config.json + model.safetensors
        tokenizer.save_pretrained(tmp)
    _replace_dir(tmp, target)


def check_output_dir(folder: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Refuse, in one sentence, an `output_dir` that is a file, or that holds an earlier run
    (last/ or best/) when neither `resume` nor `overwrite` says what to do with it."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"output_dir {out} is a file, not a folder; choose a folder for the checkpoints "
                             "(it is created if it does not exist).")
    found = [name for name in ("last", "last.old", "best") if (out / name).exists()]
    if found and not resume and not overwrite:
        raise ParameterError(
            f"output_dir {out} already holds a run ({', '.join(f'{n}/' for n in found)}); continue it with "
            f"--resume (resume=True), start again with --overwrite (overwrite=True), or choose another folder."
        )


def clear_run(folder: str | os.PathLike) -> None:
    """Delete an earlier run's checkpoints (last/, last.old/, best/) in `folder`; nothing else."""
    for name in ("last", "last.old", "best"):
        if (Path(folder) / name).is_dir():
            shutil.rmtree(Path(folder) / name)
