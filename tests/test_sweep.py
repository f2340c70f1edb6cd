"""Sweeps and run reports, on a tiny fixture notebook (no model, no torch in the kernel)."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from bertlab.__main__ import main
from bertlab.classroom import report, sweep
from bertlab.classroom import run as runner

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "sweep_fixture.ipynb"
PNG = b"\x89PNG\r\n\x1a\n"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_self_contained_html(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<table>" in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for s in sources:
        assert base64.b64decode(s.split(",", 1)[1]).startswith(PNG)
    assert "href=" not in text  # nothing to fetch
    return text


@pytest.mark.slow
def test_sweep_two_parameters_then_rerun_skips_finished_points(tmp_path, monkeypatch):
    out = sweep.sweep(str(FIXTURE), ["lr=0.05,0.2", "seed=0,1"], {"profile": "ci"}, runs=tmp_path)
    folder = tmp_path / "sweep_fixture-sweep-lr-seed"
    assert out["dir"] == folder
    rows = read_csv(folder / "summary.csv")
    assert [r["point"] for r in rows] == ["lr=0.05_seed=0", "lr=0.05_seed=1", "lr=0.2_seed=0", "lr=0.2_seed=1"]
    assert list(rows[0]) == ["point", "lr", "seed", "ok", "seconds", "error", "final_loss", "slope_error"]
    assert all(r["ok"] == "True" for r in rows)
    loss = {(r["lr"], r["seed"]): float(r["final_loss"]) for r in rows}
    assert loss[("0.2", "0")] < loss[("0.05", "0")]  # a bigger step gets further in 20 steps
    for r in rows:
        point = folder / r["point"]
        assert (point / "sweep_fixture.ipynb").exists() and (point / "metrics.json").exists()
        executed = nbformat.read(str(point / "sweep_fixture.ipynb"), as_version=4)
        assert "profile: ci, steps: 20" in str(executed.cells[2].outputs)  # cell 0 is papermill's
    assert out["metric"] == "final_loss" and out["plot"] == folder / "final_loss.png"
    assert out["plot"].read_bytes().startswith(PNG)
    html = assert_self_contained_html(folder / "report.html")
    assert "lr=0.2_seed=1" in html and "final_loss" in html

    # An interrupted sweep: one point never finished. The rerun runs only that one.
    (folder / "lr=0.2_seed=1" / "point.json").unlink()
    calls = []
    real_run = runner.run
    monkeypatch.setattr(runner, "run", lambda *a, **k: calls.append(a[1]) or real_run(*a, **k))
    again = sweep.sweep(str(FIXTURE), ["lr=0.05,0.2", "seed=0,1"], {"profile": "ci"}, runs=tmp_path)
    assert calls == [{"profile": "ci", "lr": "0.2", "seed": "1"}]
    assert [r["final_loss"] for r in again["rows"]] == [r["final_loss"] for r in out["rows"]]
    # Other fixed parameters make other runs: nothing is skipped by mistake.
    calls.clear()
    sweep.sweep(str(FIXTURE), ["lr=0.05"], {"profile": "ci", "num_steps": "3"}, runs=tmp_path,
                name="sweep_fixture-sweep-lr-seed-other")
    assert calls == [{"profile": "ci", "num_steps": "3", "lr": "0.05"}]


@pytest.mark.slow
def test_jobs_run_at_once_with_the_threads_divided(tmp_path, capsys):
    out = sweep.sweep(str(FIXTURE), ["seed=3,4"], {"profile": "ci", "num_steps": "2"}, jobs=2,
                      runs=tmp_path, metric="slope_error")
    threads = max(1, (os.cpu_count() or 1) // 2)
    for r in out["rows"]:
        assert r["ok"], r["error"]
        executed = nbformat.read(str(out["dir"] / r["point"] / "sweep_fixture.ipynb"), as_version=4)
        assert f"threads: {threads}" in str(executed.cells[2].outputs)
    assert out["plot"].name == "slope_error.png"
    assert "[2/2]" in capsys.readouterr().out


def test_comparison_plot_with_a_text_parameter_and_three_parameters():
    rows = [{"point": f"{o}-{lr}-{s}", "optimizer": o, "lr": lr, "seed": s, "ok": True, "acc": lr * s}
            for o in ("sgd", "adam") for lr in (0.1, 1.0) for s in (0, 1, 2)]
    rows.append({"point": "failed", "optimizer": "sgd", "lr": 0.1, "seed": 3, "ok": False})
    fig = sweep.comparison_figure(rows, {"optimizer": ["sgd", "adam"], "lr": [0.1, 1.0],
                                         "seed": [0, 1, 2, 3]}, "acc")
    left, right = fig.axes[:2]
    assert left.get_xlabel() == "optimizer" and right.get_xlabel() == "lr"
    assert "mean ± std over seeds" in right.get_title()
    assert [t.get_text() for t in left.get_xticklabels()] == ["sgd", "adam"]
    assert len(right.get_legend().get_texts()) == 2  # one line per optimizer


def test_course_report(tmp_path):
    rows = [
        {"notebook": "01_forward_pass", "profile": "ci", "seconds": 12.5, "ok": True, "error": "",
         "metrics": {"max_abs_diff": 1e-7, "_meta": {"seed": 0}}},
        {"notebook": "02_backpropagation", "profile": "ci", "seconds": 3.0, "ok": False,
         "error": "CheckFailed: [02.1] <wrong>", "metrics": {}},
    ]
    path = report.write_course_report(rows, tmp_path / "course" / "report.html")
    assert path == tmp_path / "course" / "report.html"
    html = assert_self_contained_html(path)
    assert "1 of 2 notebooks ran cleanly" in html and "&lt;wrong&gt;" in html
    assert "max_abs_diff" in html and "_meta" not in html
    assert report.write_course_report(rows, tmp_path).name == "report.html"
    text = report.course_summary(rows)
    assert "02_backpropagation" in text and "FAILED" in text and "1 of 2" in text


@pytest.mark.parametrize("args, expected", [
    (["nope.ipynb", "--grid", "lr=1,2"], "does not exist"),
    ([str(FIXTURE), "--grid", "learning_rate=1,2"], "has no parameter 'learning_rate'"),
    ([str(FIXTURE), "--grid", "lr=0.1", "-p", "step", "3"], "has no parameter 'step'"),
    ([str(FIXTURE), "--grid", "lr=0.1,fast"], "expects float, but got 'fast'"),
    ([str(FIXTURE), "--grid", "seed=0,1.5"], "expects int, but got '1.5'"),
    ([str(FIXTURE)], "The grid is empty"),
    ([str(FIXTURE), "--grid", "lr="], "lists no values"),
    ([str(FIXTURE), "--grid", "lr"], "must look like NAME=V1,V2"),
    ([str(FIXTURE), "--grid", "lr=1", "--grid", "lr=2"], "names lr twice"),
    ([str(FIXTURE), "--grid", "lr=1", "-p", "lr", "2"], "both swept"),
    ([str(FIXTURE), "--grid", "lr=1", "-p", "metrics_path", "x.json"], "sets metrics_path itself"),
    ([str(FIXTURE), "--grid", "lr=1", "--jobs", "0"], "--jobs must be at least 1"),
    (["BROKEN", "--grid", "lr=1"], "is not valid JSON"),
])
def test_bad_input_is_one_sentence(args, expected, tmp_path, capsys, monkeypatch):
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    args = [str(broken) if a == "BROKEN" else a for a in args]
    monkeypatch.setattr(sweep.notebooks, "RUNS", tmp_path / "runs")
    assert main(["sweep", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and expected in err
    assert not (tmp_path / "runs").exists()  # nothing ran


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "../up", ""])
def test_a_name_that_escapes_runs_is_refused(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep.notebooks, "RUNS", tmp_path / "runs")
    args = ["sweep", str(FIXTURE), "--grid", "lr=0.1", "--name", name]
    if name == "":  # an empty --name means the default, so test the rule itself
        with pytest.raises(sweep.ParameterError, match="one folder name under runs/"):
            sweep.check_name(name)
        return
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "must be one folder name under runs/" in err and "\n" not in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sweep.json").exists()


def test_a_sweep_of_the_same_name_with_other_settings_is_refused(tmp_path, capsys, monkeypatch):
    """The same --name with other fixed -p values (or grid, or notebook) would mix two sweeps
    in one summary.csv: refused, naming what differs, unless --overwrite."""
    monkeypatch.setattr(sweep.notebooks, "RUNS", tmp_path)
    folder = tmp_path / "mine"
    sweep.claim(folder, {"notebook": FIXTURE.name, "grid": {"lr": ["0.1"]}, "fixed": {"num_steps": "3"}}, False)
    (folder / "lr=0.1").mkdir()
    (folder / "lr=0.1" / "point.json").write_text("{}")
    assert main(["sweep", str(FIXTURE), "--grid", "lr=0.1", "-p", "num_steps", "5", "--name", "mine"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds another sweep (fixed {'num_steps': '3'} (now {'num_steps': '5'}))" in err
    assert "another --name" in err and "--overwrite" in err and "\n" not in err
    assert (folder / "lr=0.1" / "point.json").exists()
    (tmp_path / "legacy").mkdir()  # a folder without sweep.json is not taken over either
    (tmp_path / "legacy" / "x").write_text("")
    with pytest.raises(sweep.ParameterError, match=r"another sweep \(no sweep.json\)"):
        sweep.claim(tmp_path / "legacy", {"notebook": "a", "grid": {}, "fixed": {}}, False)
    same = {"notebook": FIXTURE.name, "grid": {"lr": ["0.1"]}, "fixed": {"num_steps": "3"}}
    sweep.claim(folder, same, False)  # the same sweep again (a resume): kept
    assert (folder / "lr=0.1" / "point.json").exists()
    sweep.claim(folder, {**same, "fixed": {"num_steps": "5"}}, True)  # --overwrite: replaced
    assert not (folder / "lr=0.1").exists()
    assert json.loads((folder / "sweep.json").read_text())["fixed"] == {"num_steps": "5"}
