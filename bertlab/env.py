"""The machine a notebook runs on: seeds, devices, profiles and a version report.

Introduced in notebook 00 (setup). Every notebook's second cell checks its own parameters
with `bertlab.params`, then makes one call, `start`, which checks the three parameters
every notebook has (profile, seed, metrics_path), resolves the profile and the device,
seeds every generator and starts the metrics record (`bertlab.results`).
"""

from __future__ import annotations

import os
import platform
import random
from typing import Any

import numpy as np
import torch

import bertlab
from bertlab import params, results
from bertlab.errors import DeviceError, ParameterError

PROFILES = ("auto", "ci", "laptop", "gpu")
DEVICES = ("auto", "cpu", "cuda", "mps")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so a run repeats."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(device: str = "auto") -> torch.device:
    """Return the device to use: "auto" picks cuda, then mps, then cpu.

    Asking for a device this machine lacks is one clear error, never a silent fallback.
    """
    if device not in DEVICES:
        raise ParameterError(f"device must be one of {', '.join(DEVICES)}, not {device!r}.")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            'device="cuda" was asked for, but PyTorch sees no CUDA GPU on this machine; '
            'use device="auto" or "cpu", or run on a machine with an NVIDIA GPU.'
        )
    if device == "mps" and not _mps_available():
        raise DeviceError(
            'device="mps" was asked for, but this machine has no Apple GPU that PyTorch can use; '
            'use device="auto" or "cpu".'
        )
    return torch.device(device)


def resolve_profile(profile: str = "auto") -> str:
    """Turn "auto" into "ci", "gpu" or "laptop" (the README's "The three profiles").

    "auto" is "ci" when the environment variable BERTLAB_PROFILE=ci is set, else "gpu" when
    a CUDA GPU is present, else "laptop". An explicit profile is returned as it is.
    """
    if profile not in PROFILES:
        raise ParameterError(
            f"profile must be one of {', '.join(PROFILES)}, not {profile!r}."
        )
    if profile != "auto":
        return profile
    forced = os.environ.get("BERTLAB_PROFILE", "").strip()
    if forced:
        if forced not in PROFILES[1:]:
            raise ParameterError(
                f"The environment variable BERTLAB_PROFILE is {forced!r}; "
                "set it to ci, laptop or gpu, or unset it."
            )
        return forced
    return "gpu" if torch.cuda.is_available() else "laptop"


def versions() -> dict[str, str]:
    """Versions of Python and the libraries the course leans on."""
    import sklearn  # heavy (seconds): imported only when a run records its versions
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "bertlab": bertlab.__version__,
    }


def report() -> dict[str, str]:
    """Print (and return) versions, device, CPU threads, and the GPU's name and memory."""
    info = versions()
    device = pick_device("auto")
    info["device"] = device.type
    info["cpu_threads"] = str(torch.get_num_threads())
    info["cpu_cores"] = str(os.cpu_count())
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_gb"] = f"{props.total_memory / 1e9:.1f}"
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return info


def start(notebook: str, profile: str, seed: int, metrics_path: str = "", device: str = "cpu",
          **extra: Any) -> tuple[str, torch.device]:
    """Begin a notebook's run: ``profile, device = env.start("03_losses_and_optimizers", ...)``.

    Checks `profile`, `seed` and `metrics_path` (one sentence for a bad value), turns
    ``profile="auto"`` into ci, laptop or gpu, picks the device the notebook computes on
    (`device` is "cpu" for notebooks that run on the CPU whatever the machine, "auto" for
    those that use a GPU when there is one), seeds Python, NumPy and PyTorch, and starts the
    metrics record with the profile, seed, device and library versions (and `extra`).
    """
    params.choice("profile", profile, PROFILES)
    params.integer("seed", seed, minimum=0)
    params.text("metrics_path", metrics_path)
    profile = resolve_profile(profile)
    chosen = pick_device(device)
    seed_everything(seed)
    results.start(notebook, profile=profile, seed=seed, metrics_path=metrics_path,
                  device=chosen.type, versions=versions(), **extra)
    return profile, chosen
