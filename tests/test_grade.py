"""Checking submitted work: a folder of five submissions gives the right long-form table.

The submissions are built from a fixture notebook with notebook 00's exercises (00.1
cosine similarity, 00.2 a whitespace tokenizer, registered in bertlab/exercises/nb00.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from bertlab.__main__ import main
from bertlab.classroom import grade

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


@pytest.mark.slow
def test_grade_a_folder(tmp_path, capsys, preloaded_kernels):
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

    out = tmp_path / "grades.csv"
    assert main(["grade", str(folder), "--out", str(out), "--timeout", str(TIMEOUT), "--time-limit", "120"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "exercise", "passed", "message"]
    table = {(r["student"], r["exercise"]): (r["passed"] == "True", r["message"]) for r in rows}
    assert len(rows) == 15 == len(table)
    expected = {
        ("alice", "notebook"): (True, "ran in"),
        ("alice", "00.1"): (True, "passed"),
        ("alice", "00.2"): (True, "passed"),
        ("bob", "notebook"): (False, "raised CheckFailed"),
        ("bob", "00.1"): (True, "passed"),
        ("bob", "00.2"): (False, "got ['Hello', 'world'], expected ['hello', 'world']"),
        ("carol", "notebook"): (False, "raised CheckFailed"),
        ("carol", "00.1"): (False, "your code raised ValueError: I give up"),
        ("carol", "00.2"): (True, "passed"),
        ("dave", "notebook"): (False, f"ran past the {TIMEOUT} s limit"),
        ("dave", "00.1"): (False, f"ran past the {TIMEOUT} s limit"),
        ("dave", "00.2"): (True, "passed"),
        ("erin", "notebook"): (False, "not a notebook"),
        ("erin", "00.1"): (False, "not a notebook"),
        ("erin", "00.2"): (False, "not a notebook"),
    }
    for key, (passed, message) in expected.items():
        assert table[key][0] is passed and message in table[key][1], (key, table[key])
    printed = capsys.readouterr().out
    assert "cosine similarity of two vectors" in printed
    summary = {line.split()[0]: line.split()[-1] for line in printed.splitlines() if line[:4] in ("note", "00.1", "00.2")}
    assert summary == {"notebook": "1/5", "00.1": "2/5", "00.2": "3/5"}


def test_checks_run_in_a_fresh_process_that_a_submission_cannot_fool():
    """Top-level code that patches the checker is refused before anything runs."""
    cheat = '''
import bertlab.check
bertlab.check.run_exercise = lambda exercise_id, namespace: (True, "passed")

def cosine_similarity(a, b):
    """Wrong."""
    return 0.0
'''
    out, late = grade._child("from bertlab.classroom.grade import _check_worker; _check_worker()",
                             json.dumps({"exercises": [["00.1", cheat]], "timeout": 20, "nonce": "N0"}),
                             Path.cwd(), memory_gb=8, time_limit=120)
    verdicts = grade._verdicts(out, "N0")
    assert not late and [v[:2] for v in verdicts] == [["00.1", False]]
    assert "only imports and defs, but line 2 is `bertlab.check.run_exercise =" in verdicts[0][2]


def test_invalid_notebook_is_recorded_not_fatal(tmp_path):
    (tmp_path / "zoe.ipynb").write_text("{ this is not json")
    rows = grade.grade(tmp_path, tmp_path / "out" / "grades.csv", progress=False)
    assert rows == [{"student": "zoe", "exercise": "notebook", "passed": False,
                     "message": "not a valid notebook (NotJSONError); nothing was checked"}]


@pytest.mark.parametrize("case", ["missing", "empty", "bad_limit"])
def test_bad_input_is_one_sentence(case, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    folder = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "bad_limit": tmp_path}[case]
    extra = ["--timeout", "0"] if case == "bad_limit" else []
    assert main(["grade", str(folder), "--out", str(tmp_path / "g.csv"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_memory_limit_applies_to_the_child(tmp_path):
    code = "import json\ntry:\n    b = bytearray(3_000_000_000)\n    print('N0ok')\nexcept MemoryError:\n    print('N0memory')"
    out, late = grade._child(code, "", tmp_path, memory_gb=1, time_limit=60)
    assert not late and out.strip() == "N0memory"
