"""``python -m bertlab grade SUBMISSIONS_DIR --out grades.csv``: check submitted notebooks.

For each file in the folder (the student's name is the file's stem):
1. the notebook runs from a scratch copy in its own kernel in the ``ci`` profile, with a
   time limit per cell and per notebook and a memory limit (RLIMIT_AS); a notebook that
   hangs, crashes or is no notebook at all is recorded, and grading goes on;
2. every exercise is checked again by the package, in a fresh process: each `solution`
   cell's source runs in a new namespace and `bertlab.check.run_exercise` judges it. The
   notebook's own outputs are never trusted, so a submission cannot mark itself passed.

The CSV is long-form: student, exercise, passed, message; the row with exercise
``notebook`` says whether the whole notebook ran. A summary per exercise is printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from bertlab.classroom.student import exercise_pairs, solution_problems
from bertlab.errors import ParameterError

# Imported where they are used, not here: each takes seconds (and memory, which counts
# against a child's limit), and this module is also the entry point of both child processes,
# which need different parts of it. nbformat (jsonschema) is for the parent and the run
# child; nbclient (jupyter_client, zmq) for the run child; bertlab.check (torch) for the
# check child and `summary`; bertlab.classroom.report (torch, via bertlab.plots) for `summary`.

NOTEBOOK_ROW = "notebook"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", help="a folder of submitted notebooks, one per student")
    parser.add_argument("--out", default="grades.csv", help="the CSV to write (default grades.csv)")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds allowed per cell and per exercise check (default 120)")
    parser.add_argument("--time-limit", type=int, default=900,
                        help="seconds allowed per notebook (default 900)")
    parser.add_argument("--memory-gb", type=float, default=16.0,
                        help="memory (address space) allowed per notebook, in GB (default 16)")


# ---------------------------------------------------------------------------------------
# Running untrusted code in a child process with limits


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill a child and everything it started (the kernel runs in its own session)."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in [*family]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.kill()


def _child(code: str, stdin: str, cwd: Path, memory_gb: float, time_limit: float) -> tuple[str, bool]:
    """Run ``python -c code`` with the limits; return (stdout, timed_out)."""
    limit = int(memory_gb * 1e9)
    # the child sets its own memory limit (a preexec_fn is unsafe with threads); its kernel inherits it
    code = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})); {code}"
    env = {**os.environ, "BERTLAB_PROFILE": "ci", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=cwd, env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        out, _ = proc.communicate(stdin, timeout=time_limit)
        return out, False
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        out, _ = proc.communicate()
        return out, True


def _execute_worker() -> None:
    """In the child: run the notebook named on stdin with nbclient; print one JSON status."""
    import nbformat  # heavy: see the note on imports at the top
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    job = json.loads(sys.stdin.read())
    nb = nbformat.read(job["path"], as_version=4)
    at = {"index": -1}
    client = NotebookClient(nb, timeout=job["timeout"], kernel_name="python3",
                            resources={"metadata": {"path": str(Path(job["path"]).parent)}},
                            on_cell_start=lambda cell, cell_index: at.update(index=cell_index))
    t0 = time.perf_counter()
    try:
        client.execute()
        status = {"ok": True, "message": f"ran in {time.perf_counter() - t0:.1f} s"}
    except CellTimeoutError:
        status = {"ok": False, "message": f"cell {at['index'] + 1} ran past the {job['timeout']} s limit"}
    except DeadKernelError:
        status = {"ok": False, "message": f"the kernel died in cell {at['index'] + 1} (a crash, or over the memory limit)"}
    except CellExecutionError as err:
        status = {"ok": False, "message": f"cell {at['index'] + 1} raised {err.ename}: {err.evalue}"[:300]}
    except Exception as err:  # a kernel that cannot start, a notebook nbclient rejects
        status = {"ok": False, "message": f"could not run: {type(err).__name__}: {err}"[:300]}
    print(job["nonce"] + json.dumps(status), flush=True)


def _check_worker() -> None:
    """In the child: exec each solution in a new namespace; print one verdict per exercise."""
    from bertlab import check  # heavy (torch): see the note on imports at the top

    job = json.loads(sys.stdin.read())
    nonce, limit = job["nonce"], job["timeout"]
    run_exercise = check.run_exercise  # held before any submitted code runs
    check._registry()
    verdicts = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the submission prints goes nowhere near the verdicts
    sys.stdout = sys.stderr

    class TimeLimit(BaseException):  # not an Exception: a submission's `except` cannot eat it
        pass

    def alarm(signum: int, frame: Any) -> None:
        raise TimeLimit

    signal.signal(signal.SIGALRM, alarm)
    for exercise_id, source in job["exercises"]:
        problems = solution_problems(source)
        if problems:
            passed, message = False, f"a solution cell may hold only imports and defs, but {problems[0]}"
        else:
            namespace: dict[str, Any] = {"__name__": "__submission__"}
            signal.alarm(limit)
            try:
                exec(compile(source, f"<exercise {exercise_id}>", "exec"), namespace)
                passed, message = run_exercise(exercise_id, namespace)
            except TimeLimit:
                passed, message = False, f"ran past the {limit} s limit"
            except Exception as err:
                passed, message = False, f"the solution cell raised {type(err).__name__}: {err}"
            finally:
                signal.alarm(0)
        verdicts.write(nonce + json.dumps([exercise_id, passed, message[:300]]) + "\n")
        verdicts.flush()


def _verdicts(stdout: str, nonce: str) -> list[Any]:
    return [json.loads(line[len(nonce):]) for line in stdout.splitlines() if line.startswith(nonce)]


# ---------------------------------------------------------------------------------------
# Grading a folder


def read_submission(path: Path) -> tuple[Any, str]:
    """(the notebook, "") or (None, why it is not a notebook)."""
    import nbformat  # heavy: see the note on imports at the top

    if path.suffix != ".ipynb":
        return None, f"not a notebook (a {path.suffix or 'suffix-less'} file); nothing was checked"
    try:
        nb = nbformat.read(str(path), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
        return nb, ""
    except Exception as err:
        return None, f"not a valid notebook ({type(err).__name__}); nothing was checked"


def grade_one(path: Path, timeout: int = 120, time_limit: int = 900, memory_gb: float = 16.0) -> dict:
    """Run and check one submission: {"notebook": (ok, message), "exercises": {id: (ok, message)}}."""
    nb, problem = read_submission(path)
    if nb is None:
        return {"notebook": (False, problem), "exercises": {}}
    exercises = {}
    for pair in exercise_pairs(nb):
        if pair.exercise_id and pair.exercise_id not in exercises:
            exercises[pair.exercise_id] = pair.source
    nonce = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="bertlab-grade-") as scratch:
        copy = Path(scratch) / "submission.ipynb"
        shutil.copyfile(path, copy)
        run_job = json.dumps({"path": str(copy), "timeout": timeout, "nonce": nonce})
        check_job = json.dumps({"exercises": list(exercises.items()), "timeout": timeout, "nonce": nonce})
        with ThreadPoolExecutor(2) as pool:  # the run and the checks are independent
            ran = pool.submit(_child, "from bertlab.classroom.grade import _execute_worker; _execute_worker()",
                              run_job, Path(scratch), memory_gb, time_limit)
            checked = pool.submit(_child, "from bertlab.classroom.grade import _check_worker; _check_worker()",
                                  check_job, Path(scratch), memory_gb,
                                  timeout * (len(exercises) + 1) + 60)
            (run_out, run_late), (check_out, _) = ran.result(), checked.result()
    status = _verdicts(run_out, nonce)
    if status:
        notebook = (bool(status[-1]["ok"]), status[-1]["message"])
    elif run_late:
        notebook = (False, f"ran past the {time_limit} s limit for a notebook")
    else:
        notebook = (False, "the run crashed (out of memory?) before it could report")
    results = {eid: (bool(ok), message) for eid, ok, message in _verdicts(check_out, nonce)}
    for eid in exercises:
        results.setdefault(eid, (False, "the check did not finish (time limit or crash)"))
    return {"notebook": notebook, "exercises": results}


def grade(submissions: str | Path, out: str | Path = "grades.csv", timeout: int = 120,
          time_limit: int = 900, memory_gb: float = 16.0, progress: bool = True) -> list[dict]:
    """Grade every file in `submissions`; write the long-form CSV to `out`; return its rows."""
    folder = Path(submissions)
    if not folder.is_dir():
        raise ParameterError(f"The submissions folder {submissions} does not exist; give a folder of notebooks.")
    if timeout < 1 or time_limit < 1 or memory_gb <= 0:
        raise ParameterError("--timeout, --time-limit and --memory-gb must be greater than 0.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ParameterError(f"The submissions folder {submissions} is empty.")
    graded = {}
    for path in files:
        t0 = time.perf_counter()
        graded[path] = grade_one(path, timeout, time_limit, memory_gb)
        if progress:
            passed = sum(ok for ok, _ in graded[path]["exercises"].values())
            print(f"{path.stem}: {passed} of {len(graded[path]['exercises'])} exercises passed "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    ids = sorted({eid for g in graded.values() for eid in g["exercises"]})
    rows = []
    for path, g in graded.items():
        nb_ok, nb_message = g["notebook"]
        rows.append({"student": path.stem, "exercise": NOTEBOOK_ROW, "passed": nb_ok, "message": nb_message})
        for eid in ids:
            default = (False, "no solution cell for this exercise" if g["exercises"] or nb_ok else nb_message)
            ok, message = g["exercises"].get(eid, default)
            rows.append({"student": path.stem, "exercise": eid, "passed": ok, "message": message})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "exercise", "passed", "message"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def summary(rows: list[dict]) -> str:
    """Per exercise: how many students passed, and its title."""
    from bertlab import check  # heavy (torch): see the note on imports at the top
    from bertlab.classroom import report  # heavy (torch), as above

    registry = check._registry()
    order = list(dict.fromkeys(r["exercise"] for r in rows))
    table = []
    for eid in order:
        mine = [r for r in rows if r["exercise"] == eid]
        title = "the notebook ran (ci profile)" if eid == NOTEBOOK_ROW else (
            registry[eid].title if eid in registry else "(not a registered exercise)")
        table.append([eid, title, f"{sum(r['passed'] for r in mine)}/{len(mine)}"])
    return report.text_table(["exercise", "title", "passed"], table)


def main(args: argparse.Namespace) -> int:
    rows = grade(args.submissions, args.out, args.timeout, args.time_limit, args.memory_gb)
    print(summary(rows))
    print(f"{len({r['student'] for r in rows})} submissions; the table is in {args.out}")
    return 0
