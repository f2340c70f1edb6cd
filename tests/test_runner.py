"""``python -m bertlab run``: parameters checked against the notebook, metrics where asked."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bertlab.classroom import notebooks
from bertlab.classroom import run as runner
from bertlab.errors import ParameterError

REPO = Path(__file__).resolve().parent.parent


def bertlab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "bertlab", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_run_writes_metrics_in_the_callers_directory(tmp_path):
    done = bertlab("run", str(REPO / "notebooks/00_setup.ipynb"), "-p", "profile", "ci",
                   "-p", "metrics_path", "out.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "out.json").read_text())
    assert metrics["_meta"]["profile"] == "ci" and metrics["similar_pair_cosine"] > metrics["unrelated_pair_cosine"]


def test_a_typo_names_the_valid_parameters(tmp_path):
    done = bertlab("run", "00", "-p", "profle", "ci", cwd=tmp_path)
    assert done.returncode == 2
    assert "has no parameter 'profle'" in done.stderr and "profile, seed, metrics_path" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_wrong_type_names_the_expected_type(tmp_path):
    done = bertlab("run", "00", "-p", "seed", "abc", cwd=tmp_path)
    assert done.returncode == 2 and "seed expects int" in done.stderr and "Traceback" not in done.stderr


def test_missing_and_broken_notebooks(tmp_path):
    with pytest.raises(ParameterError, match="no notebook numbered 42"):
        notebooks.find("42")
    with pytest.raises(ParameterError, match="does not exist"):
        notebooks.find(tmp_path / "nope.ipynb")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(ParameterError, match="not valid JSON"):
        notebooks.find(broken)


def test_parameters_are_read_with_types_and_help():
    found = notebooks.parameters(notebooks.find("00"))
    assert list(found)[:3] == ["profile", "seed", "metrics_path"]
    assert found["seed"]["type"] == "int" and found["seed"]["default"] == 0
    assert found["profile"]["help"]
    assert notebooks.cast_parameters(notebooks.find("00"), {"seed": "5"}) == {"seed": 5}


@pytest.mark.parametrize("case", ["teacher", "exists", "folder", "suffix"])
def test_run_out_never_replaces_without_asking(case, tmp_path, capsys):
    """A teacher notebook is never replaced; an existing file only with --overwrite."""
    from bertlab.__main__ import main

    (tmp_path / "done.ipynb").write_text("an earlier run")
    out = {"teacher": REPO / "notebooks" / "03_losses_and_optimizers.ipynb", "exists": tmp_path / "done.ipynb",
           "folder": tmp_path, "suffix": tmp_path / "run.txt"}[case]
    before = out.read_bytes() if out.is_file() else None
    assert main(["run", "03", "-p", "profile", "ci", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    expected = {"teacher": "is a teacher notebook or in their folder notebooks/", "exists": "pass --overwrite",
                "folder": "is a folder", "suffix": "must be a notebook file ending in .ipynb"}[case]
    assert err.startswith("error: ") and "\n" not in err and expected in err, err
    assert (out.read_bytes() if out.is_file() else None) == before
    if case == "teacher":
        assert "refresh 03" in err
        with pytest.raises(ParameterError, match="never writes to"):  # not even with --overwrite
            runner.check_out(str(out), out, overwrite=True)
        with pytest.raises(ParameterError, match="never writes to"):  # nor a new file among them
            runner.check_out(str(out.with_name("03_copy.ipynb")), out, overwrite=True)
    if case == "exists":
        assert runner.check_out(str(out), REPO / "notebooks" / "03_losses_and_optimizers.ipynb", True) == out


def test_refresh_of_a_failing_notebook_is_one_sentence_and_leaves_the_file(tmp_path, capsys):
    import nbformat

    from bertlab.__main__ import main

    path = tmp_path / "99_fails.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")])
    nbformat.write(nb, str(path))
    before = path.read_bytes()
    assert main(["refresh", str(path)]) == 2  # was: nbclient's CellExecutionError traceback
    err = capsys.readouterr().err
    assert "99_fails.ipynb was not refreshed: a cell raised ZeroDivisionError: division by zero" in err, err
    assert "the file is left as it was" in err and "Traceback" not in err
    assert path.read_bytes() == before
