import random

import numpy as np
import pytest
import torch

from bertlab import env
from bertlab.errors import DeviceError, ParameterError


def test_seed_everything_repeats_every_generator():
    env.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))
    env.seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_resolve_profile(monkeypatch):
    monkeypatch.setenv("BERTLAB_PROFILE", "ci")
    assert env.resolve_profile("auto") == "ci"
    assert env.resolve_profile("laptop") == "laptop"  # explicit wins
    monkeypatch.delenv("BERTLAB_PROFILE")
    expected = "gpu" if torch.cuda.is_available() else "laptop"
    assert env.resolve_profile("auto") == expected
    monkeypatch.setenv("BERTLAB_PROFILE", "fast")
    with pytest.raises(ParameterError, match="BERTLAB_PROFILE"):
        env.resolve_profile("auto")
    with pytest.raises(ParameterError, match="profile must be one of"):
        env.resolve_profile("huge")


def test_pick_device():
    assert env.pick_device("cpu").type == "cpu"
    assert env.pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ParameterError):
        env.pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            env.pick_device("cuda")


def test_report_prints_versions_and_device(capsys):
    info = env.report()
    out = capsys.readouterr().out
    for key in ("python", "torch", "transformers", "device", "cpu_threads"):
        assert key in info and key in out
    assert info["torch"] == torch.__version__
