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


def test_pick_device_on_this_machine():
    assert env.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not env._mps_available():  # a CPU-only machine
        assert env.pick_device("auto") == torch.device("cpu")
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            env.pick_device("cuda")
        with pytest.raises(DeviceError, match="no Apple GPU"):
            env.pick_device("mps")
    with pytest.raises(ParameterError, match="device must be one of"):
        env.pick_device("tpu")


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (False, False, "cpu"), (True, False, "cuda"), (False, True, "mps"), (True, True, "cuda"),
])
def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(env, "_mps_available", lambda: mps)
    assert env.pick_device("auto") == torch.device(expected)
    for name, present, message in (("cuda", cuda, "no CUDA GPU"), ("mps", mps, "no Apple GPU")):
        if present:
            assert env.pick_device(name) == torch.device(name)
        else:
            with pytest.raises(DeviceError, match=message):
                env.pick_device(name)


def test_report_prints_versions_and_device(capsys):
    info = env.report()
    out = capsys.readouterr().out
    for key in ("python", "torch", "transformers", "device", "cpu_threads"):
        assert key in info and key in out
    assert info["torch"] == torch.__version__
