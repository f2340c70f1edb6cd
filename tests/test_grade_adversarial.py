"""Submissions that attack the grader, all graded in one run, each recorded for what it did.

Each cheat replaces one or both solution cells of the tiny fixture of tests/test_grade.py
(exercises 00.1 and 00.2, and the hidden check 00.1:long; 06.2 for the imports of the
package's answer). Around the one
grading run: no file of the checkout (tracked files) or of the package changes, nothing is
planted in the system's temporary folder, the grader survives, and no process is left over.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from bertlab.classroom import grade, sandbox
from bertlab.classroom.notebooks import NOTEBOOKS, REPO
from tests.test_grade import HIDDEN, TIMEOUT, submission

pytestmark = pytest.mark.skipif(bool(sandbox.probe()), reason=f"no boundary here: {sandbox.probe()}")
PACKAGE = REPO / "bertlab"
TOKEN = f"bertlab-planted-{os.getpid()}"
COSINE = ('def cosine_similarity(a, b):\n    """Right."""\n'
          '    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))\n')

PATCH = """import bertlab.check


class _Patch:
    bertlab.check.exercise = lambda *a, **k: None


def cosine_similarity(a, b):
    raise NotImplementedError("Exercise 00.1")
"""
PATCH_QUIETLY = """import bertlab.check


class _Patch:
    for module in [bertlab.check]:
        module.exercise = lambda *a, **k: None


def simple_tokenize(text):
    raise NotImplementedError("Exercise 00.2")
"""
COPY = f"""import json


class _Copy:
    for cell in json.load(open({str(NOTEBOOKS / '00_setup.ipynb')!r}))["cells"]:
        if "solution" in cell["metadata"].get("tags", []):
            exec("".join(cell["source"]), globals())
"""
PEEK = f"""import numpy as np
import os


class _Peek:  # no word the static rules know: only the boundary stops it
    seen = []
    for where in ({str(REPO)!r} + "/note" + "books", HIDDEN, OTHERS):
        try:
            seen += os.listdir(where)
        except OSError:  # not there at all (the private /tmp) is as good as empty
            pass


{COSINE.replace("return", "return 0.0 if _Peek.seen else")}"""
WRITE = f"""import numpy as np
import os
import tempfile


class _Write:
    for where in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm", {str(REPO)!r}, {str(PACKAGE)!r}):
        try:
            open(os.path.join(where, {TOKEN!r}), "w").write("planted")
        except OSError:
            pass


{COSINE}"""
KILL = """import os


class _Kill:
    os.kill(os.getppid(), 9)


def simple_tokenize(text):
    return text.lower().split()
"""
REWRITE = f"""import bertlab.check


class _Rewrite:
    with open(bertlab.check.__file__, "a") as f:
        f.write("\\ndef exercise(*args, **kwargs):  # {TOKEN}\\n    pass\\n")


def simple_tokenize(text):
    raise NotImplementedError("Exercise 00.2")
"""
IMPORT = "from bertlab.embeddings import mean_pool\n"
IMPORT_QUIETLY = """from bertlab import embeddings as e


def mean_pool(hidden, mask):
    return [v for k, v in e.__dict__.items() if k == "mean_" + "pool"][0](hidden, mask)
"""


def with_06_2(folder: Path, student: str, source: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(source, metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell('from bertlab import check\ncheck.exercise("06.2", mean_pool)',
                                  metadata={"tags": ["check"]})])
    nbformat.write(nb, str(folder / f"{student}.ipynb"))


def tree_hashes() -> dict[str, str]:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    paths = {REPO / p for p in tracked.decode().split("\0") if p}
    paths |= {p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(paths) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adversarial")
    startup = tmp / "ipython" / "profile_default" / "startup"  # as `preloaded_kernels` does
    startup.mkdir(parents=True)
    (startup / "00-bertlab-checks.py").write_text("import bertlab.check, bertlab.exercises\n")
    folder = tmp / "submissions"
    folder.mkdir()
    submission(folder, "b_patch", {0: PATCH, 1: PATCH_QUIETLY})  # a student edition, patched
    submission(folder, "d_copy", {0: COPY, 1: COPY})
    # outside /tmp (which the children see as their own, empty), so only its cover hides it
    hidden = REPO / ".test-output" / f"hidden-checks-{os.getpid()}"
    hidden.mkdir(parents=True, exist_ok=True)
    (hidden / "long.py").write_text(HIDDEN)
    peek = PEEK.replace("HIDDEN", repr(str(hidden))).replace("OTHERS", repr(str(folder)))
    submission(folder, "e_peek_rewrite", {0: peek, 1: REWRITE})  # the teacher's, the hidden checks, the others'

    submission(folder, "f_write_kill", {0: WRITE, 1: KILL})
    submission(folder, "z_honest", {})
    other = tmp / "submissions-06"  # notebook 06's assignment: graded in a run of its own
    other.mkdir()
    with_06_2(other, "i_import", IMPORT)
    with_06_2(other, "j_import_quietly", IMPORT_QUIETLY)
    before, mine = tree_hashes(), psutil.Process()
    earlier = {p.pid for p in mine.children(recursive=True)}  # started by other tests of this session
    saved = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(tmp / "ipython")
    t0 = time.perf_counter()
    try:
        grade.grade(folder, tmp / "grades.csv", timeout=TIMEOUT * 2, time_limit=120, progress=False,
                    hidden_checks=str(hidden))
        grade.grade(other, tmp / "grades-06.csv", timeout=TIMEOUT * 2, time_limit=120, progress=False)
    finally:
        shutil.rmtree(hidden)
        os.environ.pop("IPYTHONDIR") if saved is None else os.environ.update(IPYTHONDIR=saved)
    print(f"adversarial grading run: {time.perf_counter() - t0:.0f} s")
    rows = [*csv.DictReader((tmp / "grades.csv").open()), *csv.DictReader((tmp / "grades-06.csv").open())]
    return {"rows": {(r["student"], r["exercise"]): (r["passed"] == "True", r["message"]) for r in rows},
            "before": before, "after": tree_hashes(), "tmp": tmp,
            "left": [p for p in mine.children(recursive=True) if p.pid not in earlier]}


CASES = {
    ("b_patch", "00.1"): (False, "flagged: the solution changes the package (bertlab.check.exercise)"),
    ("b_patch", "00.2"): (False, "flagged: changed bertlab.check.exercise, which the checks use"),
    ("d_copy", "00.1"): (False, "flagged: the solution "),
    ("d_copy", "00.2"): (False, "flagged: the solution "),
    ("d_copy", "notebook"): (False, "raised FileNotFoundError"),
    ("b_patch", "00.1:long"): (False, "flagged: the solution changes the package"),
    ("e_peek_rewrite", "00.1"): (True, "passed"),  # it saw empty folders: notebooks/, hidden/, submissions/
    ("e_peek_rewrite", "00.1:long"): (True, "passed"),
    # as nobody it may not write there (PermissionError); were it root, the mount is read-only
    ("e_peek_rewrite", "notebook"): (False, "Error: [Errno"),
    ("e_peek_rewrite", "00.2"): (False, "the solution cell raised PermissionError: [Errno 13] Permission denied: "
                                        f"'{PACKAGE / 'check.py'}'"),
    ("f_write_kill", "00.1"): (True, "passed"),  # its files went to its own scratch folder
    ("f_write_kill", "notebook"): (True, "ran in"),  # the kernel's parent ignored the kill
    ("f_write_kill", "00.2"): (True, "passed"),  # and so did the check's
    ("i_import", "06.2"): (False, "flagged: the solution imports mean_pool from bertlab.embeddings"),
    ("j_import_quietly", "06.2"): (False, "flagged: calls the package's own bertlab.embeddings.mean_pool"),
    ("z_honest", "00.1"): (True, "passed"),
    ("z_honest", "00.2"): (True, "passed"),
    ("z_honest", "00.1:long"): (True, "passed"),  # the hidden check ran
}


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_each_attack_is_recorded_for_what_it_did(graded, key):
    passed, message = CASES[key]
    assert graded["rows"][key][0] is passed and message in graded["rows"][key][1], graded["rows"][key]


@pytest.mark.slow
def test_every_student_has_every_row_and_the_honest_one_passes(graded):
    students = {s for s, _ in graded["rows"]}
    # notebook, 00.1, 00.2, 00.1:long for notebook 00's five; notebook, 06.1, 06.2, 06.3 for 06's two
    assert len(students) == 7 and len(graded["rows"]) == 5 * 4 + 2 * 4
    assert graded["rows"][("z_honest", "notebook")][0]


@pytest.mark.slow
def test_nothing_outside_the_scratch_folders_changed(graded):
    changed = sorted(p for p in graded["before"].keys() | graded["after"].keys()
                     if graded["before"].get(p) != graded["after"].get(p))
    planted = [p for p in changed if Path(p).is_file() and TOKEN in Path(p).read_text(errors="replace")]
    assert planted == [] and str(PACKAGE / "check.py") not in changed
    if not os.environ.get("BERTLAB_SHARED_TREE"):  # set it while others edit the same checkout
        assert changed == []
    for where in {tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm", str(REPO), str(PACKAGE)}:
        assert not (Path(where) / TOKEN).exists(), where


@pytest.mark.slow
def test_no_process_is_left_over(graded):
    assert [p for p in graded["left"] if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
