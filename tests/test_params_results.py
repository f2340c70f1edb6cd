import json
import math

import pytest

from bertlab import params, results
from bertlab.errors import ParameterError


def test_params_accept_good_values():
    assert params.choice("profile", "ci", ["ci", "laptop"]) == "ci"
    assert params.integer("seed", 3, minimum=0) == 3
    assert params.number("lr", 5e-5, positive=True) == 5e-5
    assert params.text("model", "minilm", allow_empty=False) == "minilm"
    assert params.by_profile("ci", ci=1, laptop=2) == 1


@pytest.mark.parametrize("call, message", [
    (lambda: params.choice("profile", "big", ["ci", "laptop"]), "must be one of 'ci', 'laptop'"),
    (lambda: params.integer("seed", "abc"), "seed must be a whole number"),
    (lambda: params.integer("seed", True), "seed must be a whole number"),
    (lambda: params.integer("seed", -1, minimum=0), "at least 0"),
    (lambda: params.number("lr", 0.0, positive=True), "greater than 0"),
    (lambda: params.number("lr", math.nan), "finite number"),
    (lambda: params.text("model", "  ", allow_empty=False), "must not be empty"),
    (lambda: params.by_profile("gpu", ci=1), "No setting for profile"),
])
def test_params_reject_bad_values_in_one_sentence(call, message):
    with pytest.raises(ParameterError, match=message) as info:
        call()
    assert str(info.value).count(".") >= 1 and "\n" not in str(info.value)


def test_record_writes_json_atomically(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    results.start("99_test", profile="ci", seed=1, metrics_path=str(path))
    assert json.loads(path.read_text())["_meta"]["profile"] == "ci"
    results.record("test_accuracy", 0.75)
    results.record("tokens_per_s", 1234)
    data = json.loads(path.read_text())
    assert data["test_accuracy"] == 0.75 and data["tokens_per_s"] == 1234.0
    assert data["_meta"]["seed"] == 1 and "seconds" in data["_meta"]  # versions: env.start, tested below
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_record_rejects_bad_names_and_values(tmp_path):
    results.start("99_test", profile="ci", seed=0, metrics_path="")
    with pytest.raises(ParameterError, match="snake_case"):
        results.record("TestAccuracy", 1.0)
    with pytest.raises(ParameterError, match="finite"):
        results.record("test_loss", float("inf"))
    assert results.record("test_loss", 0.5) == 0.5  # without a path nothing is written
    assert results.metrics()["test_loss"] == 0.5


def test_env_start_checks_the_shared_parameters_seeds_and_records_the_device_that_runs(tmp_path, monkeypatch):
    import random

    import torch

    from bertlab import env

    path = tmp_path / "m.json"
    monkeypatch.setenv("BERTLAB_PROFILE", "ci")
    # a machine with a GPU: a notebook that computes on the CPU must still record "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    profile, device = env.start("99_test", "auto", 7, str(path), extra_field="x")
    assert profile == "ci" and device == torch.device("cpu")
    meta = json.loads(path.read_text())["_meta"]
    assert meta["device"] == "cpu" and meta["profile"] == "ci" and meta["seed"] == 7
    assert meta["extra_field"] == "x" and meta["versions"]["torch"] == torch.__version__
    first = random.random()
    env.start("99_test", "laptop", 7, "")
    assert random.random() == first  # seeded again: the same stream


@pytest.mark.parametrize("args, message", [
    (("big", 0, ""), "profile must be one of"),
    (("ci", -1, ""), "seed must be at least 0"),
    (("ci", 0, 3), "metrics_path must be a string"),
])
def test_env_start_rejects_a_bad_shared_parameter_in_one_sentence(args, message):
    from bertlab import env

    with pytest.raises(ParameterError, match=message):
        env.start("99_test", *args)


def test_write_atomic_leaves_no_temporary_file_and_replaces_in_one_step(tmp_path):
    target = tmp_path / "deep" / "summary.csv"
    results.write_atomic(target, "a,b\n1,2\n")
    results.write_atomic(target, "a,b\n3,4\n")
    assert target.read_text() == "a,b\n3,4\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.csv"]


def test_write_atomic_gives_the_mode_a_plain_open_would(tmp_path):
    """mkstemp's files are private (0600): a new file gets what the umask allows, a replaced
    one keeps its own mode (was: every metrics file, grades.csv and benchmark JSON was 0600)."""
    import os

    old = os.umask(0o022)
    try:
        new = results.write_atomic(tmp_path / "grades.csv", "a\n")
        assert new.stat().st_mode & 0o777 == 0o644 and results._umask() == 0o022
        new.chmod(0o640)
        results.write_atomic(new, "b\n")
        assert new.stat().st_mode & 0o777 == 0o640 and new.read_text() == "b\n"
    finally:
        os.umask(old)
