"""Checking submitted work: a folder of five submissions gives the right long-form table.

The submissions are built from a fixture notebook with notebook 00's exercises (00.1
cosine similarity, 00.2 a whitespace tokenizer, registered in bertlab/exercises/nb00.py).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest

from bertlab.__main__ import main
from bertlab.classroom import grade, sandbox

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "exercises_fixture.ipynb"
# The per-cell and per-check limit in the folder test: short, so that dave's endless loop
# costs 3 s (in his kernel and, at the same time, in his check), not 20. Safe only with
# `preloaded_kernels`: then every cell of the fixture runs in milliseconds, while the first
# check cell that imports the checks (torch, scikit-learn) can take 10 s on a loaded machine.
TIMEOUT = 3


def submission(folder: Path, student: str, solutions: dict[int, str]) -> None:
    """Write the fixture with some solution cells replaced (by their order, from 0)."""
    nb = nbformat.read(str(FIXTURE), as_version=4)
    cells = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    for k, source in solutions.items():
        cells[k].source = source
    nbformat.write(nb, str(folder / f"{student}.ipynb"))


WRONG = '''
def simple_tokenize(text):
    """Forgets to lowercase."""
    return text.split()
'''
RAISES = '''
def cosine_similarity(a, b):
    """Gives up."""
    raise ValueError("I give up")
'''
LOOPS = '''
def cosine_similarity(a, b):
    """Never returns."""
    while True:
        pass
'''


@pytest.fixture
def preloaded_kernels(tmp_path, monkeypatch):
    """Kernels the grader starts import the checks before the first cell, outside its limit.

    The grader passes its environment on to the run child and so to the kernel: a fresh
    IPYTHONDIR with one startup file changes nothing else (the check child imports the
    checks before any time limit anyway). Should the preload fail, alice's first check cell
    imports them again and her "ran in" below may fail; it cannot make a wrong result pass.
    """
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-bertlab-checks.py").write_text("import bertlab.check, bertlab.exercises\n")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))


HIDDEN = '''
import numpy as np

from bertlab.exercises import base


@base.register("00.1:long", "cosine similarity of long vectors", "cosine_similarity")
def _long(cosine_similarity):
    x, y = np.arange(1.0, 101.0), np.arange(100.0, 0.0, -1.0)
    base.close("00.1:long", float(cosine_similarity(x, y)), float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))))
'''


@pytest.mark.slow
def test_grade_a_folder(tmp_path, capsys, preloaded_kernels):
    """Six students, points, a hidden check, the assignment check, the outputs, a rerun."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    submission(folder, "alice", {})
    submission(folder, "bob", {1: WRONG})
    # bob also types a fake "passed" into his check cell's output: the grader ignores it
    nb = nbformat.read(str(folder / "bob.ipynb"), as_version=4)
    check_cell = [c for c in nb.cells if "check" in c.metadata.get("tags", [])][1]
    check_cell.outputs = [nbformat.v4.new_output("stream", text="✓ Exercise 00.2: passed.\n")]
    nbformat.write(nb, str(folder / "bob.ipynb"))
    submission(folder, "carol", {0: RAISES})
    submission(folder, "dave", {0: LOOPS})
    (folder / "erin.txt").write_text("I did the homework on paper.")
    wrong = nbformat.v4.new_notebook(cells=[  # frank hands in notebook 06's exercise instead
        nbformat.v4.new_code_cell("def mean_pool(h, m):\n    return h", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell('from bertlab import check\ncheck.exercise("06.2", mean_pool)',
                                  metadata={"tags": ["check"]})])
    nbformat.write(wrong, str(folder / "frank.ipynb"))
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "long.py").write_text(HIDDEN)
    (tmp_path / "points.json").write_text('{"00.2": 2, "00.1:long": 0.5}')

    out = tmp_path / "grades.csv"
    args = ["grade", str(folder), "--out", str(out), "--timeout", str(TIMEOUT), "--time-limit", "120",
            "--assignment", "00", "--points", str(tmp_path / "points.json"),
            "--hidden-checks", str(tmp_path / "hidden")]
    assert main(args) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "exercise", "passed", "message", "points", "max_points"]
    table = {(r["student"], r["exercise"]): (r["passed"] == "True", r["message"], r["points"]) for r in rows}
    assert len(rows) == 24 == len(table)
    expected = {
        ("alice", "notebook"): (True, "ran in", "0"),
        ("alice", "00.1"): (True, "passed", "1"),
        ("alice", "00.1:long"): (True, "passed", "0.5"),
        ("alice", "00.2"): (True, "passed", "2"),
        ("bob", "notebook"): (False, "raised CheckFailed", "0"),
        ("bob", "00.1"): (True, "passed", "1"),
        ("bob", "00.2"): (False, "got ['Hello', 'world'], expected ['hello', 'world']", "0"),
        ("carol", "notebook"): (False, "raised CheckFailed", "0"),
        ("carol", "00.1"): (False, "your code raised ValueError: I give up", "0"),
        ("carol", "00.1:long"): (False, "your code raised ValueError: I give up", "0"),
        ("carol", "00.2"): (True, "passed", "2"),
        ("dave", "notebook"): (False, f"ran past the {TIMEOUT} s limit", "0"),
        ("dave", "00.1"): (False, f"ran past the {TIMEOUT} s limit", "0"),
        ("dave", "00.1:long"): (False, f"ran past the {TIMEOUT} s limit", "0"),
        ("dave", "00.2"): (True, "passed", "2"),
        ("erin", "notebook"): (False, "not a notebook", "0"),
        ("erin", "00.1"): (False, "not a notebook", "0"),
        ("frank", "notebook"): (False, "the wrong notebook: its checks are for 06.2, the assignment's for 00.1, 00.2", "0"),
        ("frank", "00.2"): (False, "the wrong notebook was submitted", "0"),
    }
    for key, (passed, message, points) in expected.items():
        assert table[key][0] is passed and message in table[key][1] and table[key][2] == points, (key, table[key])
    printed = capsys.readouterr().out
    assert "cosine similarity of two vectors" in printed and "alice 3.5/3.5" in printed
    summary = {line.split()[0]: line.split()[-1] for line in printed.splitlines() if line[:4] in ("note", "00.1", "00.2")}
    assert summary == {"notebook": "1/6", "00.1": "2/6", "00.1:long": "2/6", "00.2": "3/6"}
    # the gradebook import: one row per student, one column per check, and the total
    lms = list(csv.reader((tmp_path / "grades-lms.csv").open()))
    assert lms[0] == ["student", "00.1", "00.2", "00.1:long", "total"]
    assert lms[1] == ["alice", "1", "2", "0.5", "3.5"] and lms[2] == ["bob", "1", "0", "0.5", "1.5"]
    feedback = (tmp_path / "grades-feedback" / "bob.md").read_text()
    assert "Total: 1.5 of 3.5 points" in feedback and "expected ['hello', 'world']" in feedback
    assert not (tmp_path / "grades.incomplete").exists()

    # a rerun skips whoever handed in the same file; erin's new file is graded again
    (folder / "erin.txt").write_text("Still on paper.")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "alice: graded before with the same file" in printed and "erin: 0 of 0 checks passed" in printed
    assert list(csv.DictReader(out.open())) == rows


def test_checks_run_in_a_fresh_process_that_a_submission_cannot_fool():
    """Top-level code that patches the checker is refused before anything runs."""
    cheat = '''
import bertlab.check
bertlab.check.run_exercise = lambda exercise_id, namespace: (True, "passed")

def cosine_similarity(a, b):
    """Wrong."""
    return 0.0
'''
    job = json.dumps({"exercises": [["00.1", cheat]], "timeout": 20, "nonce": "N0", "hidden": []})
    out, late = sandbox.run_child(grade.CHECK, job, memory_gb=8, time_limit=120)
    verdicts = grade._verdicts(out, "N0")
    assert not late and [v[:2] for v in verdicts] == [["00.1", False]]
    assert "only imports and defs, but line 2 is `bertlab.check.run_exercise =" in verdicts[0][2]


def test_invalid_notebook_is_recorded_not_fatal(tmp_path, capsys):
    """Also: without the boundary, grading works, warns once and says so in its outputs."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "zoe.ipynb").write_text("{ this is not json")
    out = tmp_path / "out" / "grades.csv"
    rows = grade.grade(tmp_path / "in", out, progress=False, boundary=sandbox.Boundary(problem="testing"))
    assert rows == [{"student": "zoe", "exercise": "notebook", "passed": False, "points": 0, "max_points": 0,
                     "message": "not a valid notebook (NotJSONError); nothing was checked"}]
    assert capsys.readouterr().err.count("warning: grading without the boundary, because testing") == 1
    assert json.loads((tmp_path / "out" / "grades.state.json").read_text())["boundary"] == "testing"
    assert "without the boundary: testing" in (tmp_path / "out" / "grades-feedback" / "zoe.md").read_text()


def test_a_grader_that_dies_leaves_everyone_graded_so_far(tmp_path, monkeypatch):
    for name in ("ann", "ben", "cal"):
        (tmp_path / f"{name}.txt").write_text(name)
    out = tmp_path.parent / f"{tmp_path.name}-results" / "grades.csv"
    calls = []

    def dies_on_the_second(path, *args, **kwargs):
        calls.append(path.stem)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as good as a SIGKILL for what is on disk
        return {"notebook": (True, "ran"), "exercises": {"00.1": (True, "passed")}}

    monkeypatch.setattr(grade, "grade_one", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        grade.grade(tmp_path, out, progress=False)
    assert [r["student"] for r in csv.DictReader(out.open())] == ["ann", "ann"]
    assert "1 of 3 submissions graded so far" in out.with_name("grades.incomplete").read_text()
    rows = grade.grade(tmp_path, out, progress=False)  # the rerun grades only ben and cal
    assert calls == ["ann", "ben", "ben", "cal"] and len(rows) == 6
    assert not out.with_name("grades.incomplete").exists()
    grade.grade(tmp_path, out, progress=False, regrade=True)
    assert calls[4:] == ["ann", "ben", "cal"]


@pytest.mark.parametrize("case", ["missing", "empty", "bad_limit", "out_folder", "out_inside", "bad_points",
                                  "small_memory"])
def test_bad_input_is_one_sentence(case, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a.txt").write_text("x")
    folder = {"missing": tmp_path / "nope", "empty": tmp_path / "empty"}.get(case, tmp_path)
    out = {"out_folder": tmp_path / "empty", "out_inside": tmp_path / "grades.csv"}.get(
        case, tmp_path.parent / f"{tmp_path.name}-g.csv")
    extra = {"bad_limit": ["--timeout", "0"], "bad_points": ["--points", str(tmp_path / "a.txt")],
             "small_memory": ["--memory-gb", "0.5"]}.get(case, [])  # was: everyone 0, exit 0
    assert main(["grade", str(folder), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not out.exists() or out.is_dir()
    assert not (tmp_path / "grades.csv").exists() and not (tmp_path / "empty" / "grades.csv").exists()


@pytest.mark.parametrize("boundary", ["on", "off"])
def test_memory_limit_applies_to_the_child(tmp_path, boundary):
    if boundary == "on" and sandbox.probe():
        pytest.skip(f"no boundary here: {sandbox.probe()}")
    code = "import json\ntry:\n    b = bytearray(3_000_000_000)\n    print('N0ok')\nexcept MemoryError:\n    print('N0memory')"
    out, late = sandbox.run_child(code, "", memory_gb=1, time_limit=60,
                                  boundary=sandbox.Boundary(problem="" if boundary == "on" else "off"))
    assert not late and out.strip() == "N0memory"


def test_the_static_rules_flag_borrowed_answers_but_no_teacher_solution():
    import ast

    from bertlab import check
    from bertlab.classroom.student import python_source

    registry = check._registry()
    for path in sorted(Path(grade.NOTEBOOKS).glob("*.ipynb")):
        for pair in grade.exercise_pairs(nbformat.read(str(path), as_version=4)):
            names = registry[pair.exercise_id].names
            assert sandbox.borrowed(ast.parse(python_source(pair.source)), names) == "", (path.name, pair.exercise_id)
    names = ("mean_pool",)
    cheats = {
        "from bertlab.embeddings import mean_pool as mp": "imports mean_pool from bertlab.embeddings",
        "import bertlab.embeddings as E\ndef mean_pool(h, m):\n    return E.mean_pool(h, m)": "uses E.mean_pool",
        "import bertlab\ndef mean_pool(h, m):\n    return getattr(bertlab.embeddings, 'mean_pool')(h, m)": "uses getattr",
        "import importlib": "imports importlib",
        "def mean_pool(h, m):\n    return __import__('bertlab')": "uses __import__",
        "import sys\ndef mean_pool(h, m):\n    return sys.modules['bertlab.embeddings']": "uses sys.modules",
        "from inspect import getsource": "imports inspect",
        "from bertlab.exercises import nb06": "the checks themselves",
        "def mean_pool(h, m):\n    return open('bertlab/exercises/nb06.py').read()": "refers to 'bertlab/exercises/nb06.py'",
        "from bertlab import check\nclass A:\n    check.exercise = print": "changes the package (check.exercise)",
    }
    for source, why in cheats.items():
        assert why in sandbox.borrowed(ast.parse(source), names), source
    helper = "from bertlab.attention import padding_mask\ndef mean_pool(h, m):\n    return padding_mask(m)"
    assert sandbox.borrowed(ast.parse(helper), names) == ""  # the package's other helpers are allowed


def test_a_csv_that_grade_did_not_write_is_not_replaced(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "zoe.txt").write_text("x")
    out = tmp_path / "marks.csv"
    out.write_text("student,mark\nzoe,A\n")
    assert main(["grade", str(tmp_path / "in"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists and no grading run wrote it" in err and "\n" not in err
    assert out.read_text() == "student,mark\nzoe,A\n"


def fake_grading(monkeypatch, stop_on: str = "", how: type[BaseException] = SystemExit):
    """grade_one replaced by a quick stand-in that passes 00.1; `stop_on` a student stops the grader."""
    calls = []

    def fake(path, *args, **kwargs):
        calls.append(path.stem)
        if path.stem == stop_on:
            raise how("the grader stopped here")
        return {"notebook": (True, "ran"), "exercises": {"00.1": (True, "passed")}}

    monkeypatch.setattr(grade, "grade_one", fake)
    return calls


def test_the_submission_that_stopped_the_grader_is_named_and_skipped_on_rerun(tmp_path, monkeypatch, capsys):
    for name in ("ann", "ben", "cal"):
        (tmp_path / f"{name}.txt").write_text(name)
    out = tmp_path.parent / f"{tmp_path.name}-stopped" / "grades.csv"
    calls = fake_grading(monkeypatch, stop_on="ben")  # as if ben's code killed the grader
    with pytest.raises(SystemExit):
        grade.grade(tmp_path, out, progress=False)
    calls = fake_grading(monkeypatch)
    rows = grade.grade(tmp_path, out, progress=False)  # was: ben ran again, and stopped every rerun
    assert calls == ["cal"]
    assert "ben: skipped: the last grading run stopped while grading this submission" in capsys.readouterr().err
    ben = [r for r in rows if r["student"] == "ben"]
    assert not any(r["passed"] for r in ben) and "--regrade" in ben[0]["message"]
    grade.grade(tmp_path, out, progress=False, regrade=True)
    assert calls[1:] == ["ann", "ben", "cal"]


def test_lms_cells_that_a_spreadsheet_would_run_are_escaped(tmp_path, monkeypatch):
    (tmp_path / '=HYPERLINK("x.example","y").txt').write_text("x")
    (tmp_path / "@sum.txt").write_text("x")
    out = tmp_path.parent / f"{tmp_path.name}-lms" / "grades.csv"
    fake_grading(monkeypatch)
    grade.grade(tmp_path, out, progress=False)
    lms = list(csv.reader(out.with_name("grades-lms.csv").open()))
    assert [row[0] for row in lms[1:]] == ["'=HYPERLINK(\"x.example\",\"y\")", "'@sum"]
    assert all(r["student"][:1] not in "=+-@" for r in csv.DictReader(out.open()))


def test_an_out_holding_another_folders_grades_is_refused(tmp_path, monkeypatch, capsys):
    first, second = tmp_path / "class-a", tmp_path / "class-b"
    for folder, name in ((first, "ann"), (second, "zed")):
        folder.mkdir()
        (folder / f"{name}.txt").write_text(name)
    out = tmp_path / "grades.csv"
    fake_grading(monkeypatch)
    assert main(["grade", str(first), "--out", str(out)]) == 0
    assert main(["grade", str(second), "--out", str(out)]) == 2  # was: ann silently dropped
    assert f"holds the grades of another submissions folder ({first})" in capsys.readouterr().err
    assert [r["student"] for r in csv.DictReader(out.open())] == ["ann", "ann"]
    assert main(["grade", str(second), "--out", str(out), "--overwrite"]) == 0
    assert {r["student"] for r in csv.DictReader(out.open())} == {"zed"}


def test_ctrl_c_while_grading_is_one_sentence_and_keeps_the_results(tmp_path, monkeypatch, capsys):
    for name in ("ann", "ben"):
        (tmp_path / f"{name}.txt").write_text(name)
    out = tmp_path.parent / f"{tmp_path.name}-ctrl-c" / "grades.csv"
    fake_grading(monkeypatch, stop_on="ben", how=KeyboardInterrupt)
    assert main(["grade", str(tmp_path), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted:" in err and "run the same command again to grade the rest" in err and "Traceback" not in err
    assert [r["student"] for r in csv.DictReader(out.open())] == ["ann", "ann"]
    calls = fake_grading(monkeypatch)
    assert main(["grade", str(tmp_path), "--out", str(out)]) == 0 and calls == ["ben"]  # Ctrl-C is no crash


def test_a_hidden_check_that_exits_is_one_sentence(tmp_path, capsys):
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "ann.txt").write_text("x")
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "quits.py").write_text("raise SystemExit(3)\n")
    assert main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "g.csv"),
                 "--hidden-checks", str(tmp_path / "hidden")]) == 2  # was: exit 3, no word
    err = capsys.readouterr().err.strip()
    assert err == "error: The hidden check quits.py does not load (it calls exit(3)); fix it and grade again."


def test_ctrl_c_stops_the_children_and_their_scratch_goes():
    """A child left running after Ctrl-C would run to its time limit with a copy of a submission."""
    import tempfile
    import threading
    import time

    scratch = lambda: set(Path(tempfile.gettempdir()).glob(f"{sandbox.SCRATCH_PREFIX}{os.getpid()}-*"))  # noqa: E731
    before, done = scratch(), {}
    child = threading.Thread(target=lambda: done.update(result=sandbox.run_child(
        "import time; time.sleep(120)", "", 4, 300, sandbox.Boundary(problem="testing"))))
    start = time.monotonic()
    child.start()
    while not sandbox._running and time.monotonic() - start < 30:
        time.sleep(0.05)
    assert sandbox._running and scratch() - before  # running, in its scratch folder
    sandbox.stop_all()
    child.join(30)
    assert not child.is_alive() and time.monotonic() - start < 30 and done["result"][1] is False
    assert scratch() == before and not sandbox._running


def test_scratch_left_by_a_killed_grader_is_removed_on_the_next_run():
    import shutil
    import subprocess
    import sys
    import tempfile

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a grader pid that no longer runs
    stale = Path(tempfile.mkdtemp(prefix=f"{sandbox.SCRATCH_PREFIX}{gone.pid}-"))
    (stale / "ann.ipynb").write_text("{}")  # a copy of a submission
    live = Path(tempfile.mkdtemp(prefix=f"{sandbox.SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        assert stale in sandbox.remove_stale_scratch()
        assert not stale.exists() and live.exists()  # a running grader's scratch is kept
    finally:
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)


def exercise_notebook(folder: Path, student: str, ids: list[str]) -> None:
    """A submission with one solution and check cell per exercise id."""
    cells = []
    for eid in ids:
        cells += [nbformat.v4.new_code_cell("def f(x):\n    return x", metadata={"tags": ["solution"]}),
                  nbformat.v4.new_code_cell(f'from bertlab import check\ncheck.exercise("{eid}", f)',
                                            metadata={"tags": ["check"]})]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(folder / f"{student}.ipynb"))


def test_without_an_assignment_the_notebook_most_submissions_hold_is_graded(tmp_path, capsys):
    from bertlab.classroom import gradebook
    from bertlab.errors import ParameterError

    for student in ("ann", "ben"):
        exercise_notebook(tmp_path, student, ["06.1", "06.2"])
    exercise_notebook(tmp_path, "cal", ["00.1", "00.2"])  # pasted notebook 00's exercises
    files = sorted(tmp_path.iterdir())
    assert gradebook.target_notebook(files) == "06"  # was: 00.1 and 00.2 columns for everyone
    assert "grading notebook 06's exercises, which 2 of 3 submissions hold" in capsys.readouterr().err
    assert gradebook.assignment("06")[0] == ["06.1", "06.2", "06.3"]
    exercise_notebook(tmp_path, "dan", ["00.1"])
    with pytest.raises(ParameterError, match=r"several notebooks \(notebook 00: 2, notebook 06: 2 files\).*--assignment"):
        gradebook.target_notebook(sorted(tmp_path.iterdir()))
