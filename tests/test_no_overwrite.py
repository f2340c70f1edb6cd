"""Issue 25: nothing is overwritten, and no traceback. Every output path of a command is
checked before any work starts: a file the command did not write itself is refused in one
sentence (with --overwrite only a notebook and the checkout's own files still are).

Each test runs the reported command in this process, from a scratch folder that holds a copy
of the file it names, with the expensive part (the kernel, the training, the timing) replaced
by a stand-in that records whether it was reached: a refusal must come before it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bertlab import results
from bertlab.__main__ import main
from bertlab.classroom import course, notebooks
from bertlab.classroom import run as runner
from bertlab.errors import ParameterError

REPO = Path(__file__).resolve().parent.parent
TEACHER = "notebooks/03_losses_and_optimizers.ipynb"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A working folder with copies of README.md and two teacher notebooks, at the same paths."""
    for name in ("README.md", TEACHER, "notebooks/00_setup.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(notebooks, "RUNS", tmp_path / "runs")
    return tmp_path


@pytest.fixture
def kernels(monkeypatch):
    """Record every notebook execution instead of starting a kernel."""
    ran = []
    monkeypatch.setattr(notebooks, "execute", lambda path, output, params=None, **kw: ran.append(params))
    return ran


def refused(argv: list[str], capsys) -> str:
    """Run `python -m bertlab ARGV`; assert exit status 2 and one line; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_run_metrics_path_over_a_teacher_notebook_or_the_readme_is_refused(scratch, kernels, capsys):
    files = {name: (scratch / name).read_bytes() for name in (TEACHER, "README.md")}
    command = ["run", "01", "-p", "profile", "ci", "-p", "metrics_path"]
    err = refused([*command, TEACHER], capsys)
    assert f"-p metrics_path {TEACHER} is a notebook this command did not write" in err and "give another path" in err
    err = refused([*command, TEACHER, "--overwrite"], capsys)
    assert "not even with --overwrite" in err
    err = refused([*command, "README.md"], capsys)
    assert "README.md already exists and was not written by this command" in err and "--overwrite" in err
    assert kernels == []  # refused before any kernel started
    assert {name: (scratch / name).read_bytes() for name in files} == files
    # an earlier metrics JSON is what a rerun replaces; --overwrite lets any other file go
    results.write_json_atomic(scratch / "m.json", {"x": 1.0, "_meta": {"notebook": "01"}})
    assert main([*command, "m.json"]) == 0
    assert main([*command, "README.md", "--overwrite"]) == 0
    assert [p["metrics_path"] for p in kernels] == [str(scratch / "m.json"), str(scratch / "README.md")]


def test_finetune_metrics_path_over_a_notebook_is_refused(scratch, capsys, monkeypatch, tmp_path_factory):
    from bertlab.train import bench, cli

    tiny = bench.save_random_model(tmp_path_factory.mktemp("tiny"), "tiny")
    monkeypatch.setattr(cli, "setup", lambda cfg: pytest.fail("setup ran: the path was not checked first"))
    before = (scratch / "notebooks/00_setup.ipynb").read_bytes()
    command = ["finetune", "--model", tiny, "--device", "cpu", "--max-steps", "1", "--metrics-path"]
    err = refused([*command, "notebooks/00_setup.ipynb"], capsys)
    assert "--metrics-path notebooks/00_setup.ipynb is a notebook this command did not write" in err
    assert "not even with --overwrite" in refused([*command, "notebooks/00_setup.ipynb", "--overwrite"], capsys)
    assert "pass --overwrite" in refused([*command, "README.md"], capsys)
    assert (scratch / "notebooks/00_setup.ipynb").read_bytes() == before
    assert "is a folder; give a file name" in refused([*command, "notebooks"], capsys)


def test_bench_out_over_the_readme_or_a_folder_is_refused_before_timing(scratch, capsys, monkeypatch):
    from bertlab.train import bench

    timed = []
    monkeypatch.setattr(bench, "run_one", lambda *a, **k: timed.append(a) or pytest.fail("a loop was timed"))
    monkeypatch.setattr(bench, "load_text_dataset", lambda *a, **k: pytest.fail("the data was loaded"))
    before = (scratch / "README.md").read_bytes()
    command = ["bench", "--sizes", "tiny", "--steps", "1", "--loops", "padded", "--workloads", "short", "--out"]
    err = refused([*command, "README.md"], capsys)
    assert "--out README.md already exists and was not written by this command" in err
    assert "pass --overwrite" in err
    assert (scratch / "README.md").read_bytes() == before
    err = refused([*command, "notebooks"], capsys)
    assert "--out notebooks is a folder; give a file name, such as notebooks/bench.json" in err
    assert timed == []
    # the committed benchmark files carry the marker (machine, results): a rerun replaces them
    ours = results.has_keys("machine", "results")
    assert all(ours(p) for p in (REPO / "benchmarks").glob("*.json"))


def test_course_out_that_is_a_file_is_refused_in_one_sentence(scratch, kernels, capsys):
    before = (scratch / "README.md").read_bytes()
    err = refused(["course", "--only", "01", "--out", "README.md"], capsys)
    assert "--out README.md is a file; give a folder for the course's runs" in err
    assert (scratch / "README.md").read_bytes() == before
    # a folder with a summary.json that no course wrote: refused before the first notebook runs
    (scratch / "mine").mkdir()
    (scratch / "mine" / "summary.json").write_text('{"my": "notes"}')
    err = refused(["course", "--only", "00,01", "--out", "mine"], capsys)
    assert "--out mine: its file summary.json already exists and was not written by this command" in err
    assert kernels == [] and (scratch / "mine" / "summary.json").read_text() == '{"my": "notes"}'


def test_course_replaces_the_files_of_an_earlier_course_run(tmp_path):
    paths = course.selected("01")
    stem = paths[0].stem
    (tmp_path / stem).mkdir()
    results.write_json_atomic(tmp_path / "summary.json", [{"notebook": stem, "ok": True}])
    (tmp_path / "report.html").write_text("<!DOCTYPE html><title>bertlab course run</title>")
    results.write_json_atomic(tmp_path / stem / paths[0].name, {"cells": [], "metadata": {"papermill": {}}})
    results.write_json_atomic(tmp_path / stem / "metrics.json", {"_meta": {}})
    course.check_out(tmp_path, paths)  # all carry a course run's marks: no error
    shutil.copy(paths[0], tmp_path / stem / paths[0].name)  # a teacher notebook put there by hand
    with pytest.raises(ParameterError, match=f"its file {stem}/{paths[0].name} is a notebook"):
        course.check_out(tmp_path, paths)


def test_the_checkouts_own_files_are_refused_even_with_overwrite(tmp_path):
    for own in (REPO / "bertlab" / "params.py", REPO / "tests" / "test_layout.py"):
        with pytest.raises(ParameterError, match="one of the course's own files"):
            results.check_output(own, f"--out {own}", lambda path: True, overwrite=True)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ParameterError, match="lies inside .*notes.txt, which is a file"):
        results.check_output(tmp_path / "notes.txt" / "m.json", "--out x", results.has_keys("_meta"))
    with pytest.raises(ParameterError, match="give another path, or move that file away first"):
        results.check_output(tmp_path / "notes.txt", "--out x", results.has_keys("_meta"))  # no --overwrite flag


@pytest.fixture
def points(monkeypatch):
    """Record each sweep point instead of running notebook 07; each records final_loss."""
    ran = []

    def run_point(notebook, given, out="", timeout=1800, run_dir=None, overwrite=False):
        ran.append(given)
        results.write_json_atomic(run_dir / "metrics.json", {"final_loss": 0.5, "_meta": {"given": given}})
        return {"notebook": "07", "output": "", "metrics_path": str(run_dir / "metrics.json"),
                "seconds": 0.0, "ok": True, "error": ""}

    monkeypatch.setattr(runner, "run", run_point)
    return ran


def test_sweep_values_that_clean_to_one_name_get_two_folders_and_reruns_skip(scratch, points, capsys):
    command = ["sweep", "07", "--grid", "sentence=The cat sat on the mat.,The_cat_sat_on_the_mat.",
               "-p", "profile", "ci", "--name", "cats"]
    assert main(command) == 0
    folders = sorted(p for p in (scratch / "runs" / "cats").iterdir() if p.is_dir())
    assert len(folders) == 2 and all(f.name.startswith("sentence=The-cat-sat-on-the-mat.~") for f in folders)
    saved = {json.loads((f / "point.json").read_text())["parameters"]["sentence"] for f in folders}
    assert saved == {"The cat sat on the mat.", "The_cat_sat_on_the_mat."}  # neither run overwrote the other
    assert main(command) == 0
    assert len(points) == 2 and capsys.readouterr().out.count("done earlier, skipped") == 2


def test_sweep_a_300_character_value_gets_a_short_folder(scratch, points, capsys):
    command = ["sweep", "07", "--grid", "sentence=" + "word " * 59 + "end.", "-p", "profile", "ci", "--name", "long"]
    assert main(command) == 0  # was: OSError: File name too long
    (folder,) = [p for p in (scratch / "runs" / "long").iterdir() if p.is_dir()]
    assert len(folder.name) < 50 and folder.name.startswith("sentence=word-word-")
    assert main(command) == 0 and len(points) == 1  # the rerun skips it


def test_sweep_unknown_metric_stops_after_the_first_point(scratch, points, capsys):
    command = ["sweep", "07", "--grid", "seed=0,1,2", "-p", "profile", "ci", "--name", "seeds", "--metric"]
    err = refused([*command, "nosuch"], capsys)
    assert "--metric nosuch is not among the metrics that the first finished point (seed=0) recorded: final_loss" in err
    assert len(points) == 1  # stopped after the first point, not after the whole sweep
    err = refused([*command, "nosuch"], capsys)  # the finished point is skipped and shows the metrics: no run
    assert "recorded: final_loss" in err and len(points) == 1
    assert main([*command, "final_loss"]) == 0 and len(points) == 3  # seed=0 is kept, the rest run


def test_sweep_metrics_path_in_the_grid_says_it_cannot_be_swept(scratch, points, capsys):
    err = refused(["sweep", "07", "--grid", "metrics_path=a.json,b.json", "-p", "profile", "ci"], capsys)
    assert "metrics_path cannot be swept: the sweep sets it for each point" in err and "drop it from --grid" in err
    assert points == [] and not (scratch / "runs").exists()


def test_ctrl_c_in_a_sweep_says_what_is_kept_and_how_to_go_on(scratch, points, monkeypatch, capsys):
    ran = runner.run

    def ctrl_c_at_the_second(*args, **kwargs):
        if len(points) == 1:
            raise KeyboardInterrupt
        return ran(*args, **kwargs)

    monkeypatch.setattr(runner, "run", ctrl_c_at_the_second)
    command = ["sweep", "07", "--grid", "seed=0,1,2", "-p", "profile", "ci", "--name", "stopped"]
    assert main(command) == 130  # was: a KeyboardInterrupt traceback
    err = capsys.readouterr().err
    assert "interrupted: The sweep was interrupted with 1 of 3 points finished, kept in runs/stopped" in err
    assert "run the same command again to run the rest (finished points are skipped)" in err and "Traceback" not in err
    monkeypatch.setattr(runner, "run", ran)
    assert main(command) == 0 and len(points) == 3  # seed=0 skipped, the other two run
