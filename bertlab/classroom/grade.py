"""``python -m bertlab grade SUBMISSIONS_DIR --out grades.csv``: check submitted notebooks.

For each file in the folder (the student's name is the file's stem):
1. the notebook runs from a scratch copy in its own kernel in the ``ci`` profile, with a
   time limit per cell and per notebook and a memory limit (RLIMIT_AS);
2. every exercise is checked again by the package in another process, which gets only the
   `solution` cells' source: each exercise in a fork of its own, where the source runs in a
   new namespace and `bertlab.check.run_exercise` judges it. The notebook's outputs are never
   trusted, so a submission cannot mark itself passed; an answer taken from the package, or
   a solution that rewrites the checks, is flagged (`bertlab.classroom.sandbox`).
Both run inside the boundary of `bertlab.classroom.sandbox`; what is written, and how a rerun
resumes, is in `bertlab.classroom.gradebook`. A notebook that hangs, crashes or is no
notebook at all is recorded, and grading goes on.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import select
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bertlab.classroom import gradebook, sandbox
from bertlab.classroom.notebooks import NOTEBOOKS, REPO, RUNS
from bertlab.classroom.student import exercise_pairs, python_source, solution_problems
from bertlab.errors import ParameterError

# Imported where they are used, not here: each takes seconds (and memory, which counts
# against a child's limit), and this module is also the entry point of both child processes,
# which need different parts of it. nbformat (jsonschema) is for the parent and the run
# child; nbclient (jupyter_client, zmq) for the run child; bertlab.check (torch) for the
# check child, hidden checks and `summary`; bertlab.classroom.report (torch) for `summary`.

RUN = "from bertlab.classroom.grade import _execute_worker; _execute_worker()"
CHECK = "from bertlab.classroom.grade import _check_worker; _check_worker()"
# address space a notebook's Python needs to start: importing torch and the checks failed under
# a 1 GB limit and passed at 1.5 GB (AMD EPYC, torch 2.13); a kernel running a notebook needs more
MIN_MEMORY_GB = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", help="a folder of submitted notebooks, one per student")
    parser.add_argument("--out", default="grades.csv", help="the CSV to write (default grades.csv)")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds allowed per cell and per exercise check (default 120)")
    parser.add_argument("--time-limit", type=int, default=900,
                        help="seconds allowed per notebook (default 900)")
    parser.add_argument("--memory-gb", type=float, default=16.0,
                        help="memory (address space) allowed per notebook, in GB (default 16)")
    parser.add_argument("--assignment", help="the notebook expected (a number like 06 or a teacher "
                        "notebook): any other is rejected; its check cells' `points` metadata count")
    parser.add_argument("--points", help="a JSON file of points per check, e.g. {\"06.2\": 2} (default 1)")
    parser.add_argument("--hidden-checks", help="a folder of teacher-only checks (python files that "
                        "register 'NN.K:label' checks like bertlab/exercises), run only here")
    parser.add_argument("--regrade", action="store_true",
                        help="grade every submission again, even those graded before with the same file")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out that holds the grades of another submissions folder")


def _private_stdout() -> Any:
    """The real stdout for this process's own reports; fd 1 (inherited by anything it starts)
    becomes stderr, and no process with this user id may read this one's memory or fds."""
    import ctypes

    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as PID 1 of the boundary, untouchable
    report = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return report


def _execute_worker() -> None:
    """In the run child: run the notebook sent on stdin with nbclient; print one JSON status."""
    import threading

    import nbformat  # heavy: see the note on imports at the top
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    job = json.loads(sys.stdin.read())
    report = _private_stdout()
    watchdog = threading.Timer(job["deadline"], os._exit, (3,))  # ends it even with the grader gone
    watchdog.daemon = True
    watchdog.start()
    startup = Path(os.environ["IPYTHONDIR"]) / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    for name, text in job["startup"].items():  # the teacher's kernel start-up files, if any
        (startup / name).write_text(text)
    Path("submission.ipynb").write_text(job["notebook"], encoding="utf-8")
    nb = nbformat.read("submission.ipynb", as_version=4)
    at = {"index": -1}
    client = NotebookClient(nb, timeout=job["timeout"], kernel_name="python3",
                            resources={"metadata": {"path": os.getcwd()}},
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
    report.write(job["nonce"] + json.dumps(status) + "\n")
    report.flush()
    os._exit(0)  # now: the kernel is shut down, and no thread of it may hold the process


def _judge(exercise_id: str, source: str, names: tuple[str, ...], before: dict, run_exercise: Any) -> tuple[bool, str]:
    """In a fork of the check child: run one solution's source, then its check."""
    problems = solution_problems(source)
    if problems:
        return False, f"a solution cell may hold only imports and defs, but {problems[0]}"
    why = sandbox.borrowed(ast.parse(python_source(source)), names)
    if why:
        return False, f"flagged: the solution {why}"
    caught: list[str] = []

    def watch(frame: Any, event: str, arg: Any) -> None:  # a call from the solution into the package's answer
        if event == "call" and frame.f_code.co_name in names and frame.f_back is not None:
            module = str(frame.f_globals.get("__name__", ""))
            if module.split(".")[0] == "bertlab" and frame.f_back.f_code.co_filename.startswith("<exercise"):
                caught.append(f"{module}.{frame.f_code.co_name}")

    namespace: dict[str, Any] = {"__name__": "__submission__"}
    sys.setprofile(watch)
    try:
        exec(compile(source, f"<exercise {exercise_id}>", "exec"), namespace)
        why = next(filter(None, (sandbox.package_object(namespace[n], n) for n in names if n in namespace)), "")
        passed, message = (False, "") if why else run_exercise(exercise_id, namespace)
    except Exception as err:
        passed, message = False, f"the solution cell raised {type(err).__name__}: {err}"
    finally:
        sys.setprofile(None)
    moved = sandbox.changed(before, sandbox.fingerprint())
    if why or caught or moved:
        why = why or (f"calls the package's own {caught[0]}" if caught else
                      f"changed {moved}, which the checks use")
        return False, f"flagged: {why}"
    return passed, message


def _fork_check(exercise_id: str, source: str, names: tuple[str, ...], before: dict,
                run_exercise: Any, limit: int, report: Any) -> tuple[bool, str]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the solution's own process: it never holds the report pipe
        os.close(read)
        os.close(report.fileno())
        try:
            os.setpgid(0, 0)
            verdict = _judge(exercise_id, source, names, before, run_exercise)
        except BaseException as err:  # SystemExit, KeyboardInterrupt from a solution
            verdict = (False, f"the solution ended its check ({type(err).__name__})")
        os.write(write, (json.dumps([bool(verdict[0]), str(verdict[1])[:300]]) + "\n").encode())
        os._exit(0)
    os.close(write)
    data, deadline, late = b"", time.monotonic() + limit, False
    while b"\n" not in data:
        if not select.select([read], [], [], max(deadline - time.monotonic(), 0))[0]:
            late = True
            break
        chunk = os.read(read, 65536)
        if not chunk:
            break
        data += chunk
    os.close(read)
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except OSError:
            pass
    os.waitpid(pid, 0)
    if late:
        return False, f"ran past the {limit} s limit"
    try:
        ok, message = json.loads(data.split(b"\n")[0])
        return bool(ok), str(message)
    except (ValueError, TypeError):
        return False, "the check crashed (out of memory, or the solution ended it)"


def _check_worker() -> None:
    """In the check child: register the hidden checks, then judge each exercise in a fork."""
    from bertlab import check  # heavy (torch): see the note on imports at the top

    job = json.loads(sys.stdin.read())
    report = _private_stdout()
    for name, source in job.pop("hidden"):
        exec(compile(source, f"<hidden check {name}>", "exec"), {"__name__": f"bertlab.hidden.{name}"})
    registry, run_exercise = check._registry(), check.run_exercise  # held before any submitted code runs
    before = sandbox.fingerprint()
    for exercise_id, source in job["exercises"]:
        names = registry[exercise_id].names if exercise_id in registry else ()
        passed, message = _fork_check(exercise_id, source, names, before, run_exercise, job["timeout"], report)
        report.write(job["nonce"] + json.dumps([exercise_id, passed, message]) + "\n")
        report.flush()


def _verdicts(stdout: str, nonce: str) -> list[Any]:
    return [json.loads(line[len(nonce):]) for line in stdout.splitlines() if line.startswith(nonce)]


# ---------------------------------------------------------------------------------------
# Grading a folder


def grade_one(path: Path, timeout: int = 120, time_limit: int = 900, memory_gb: float = 16.0,
              boundary: sandbox.Boundary | None = None, hidden: tuple = ((), ()),
              expected: list[str] | None = None) -> dict:
    """Run and check one submission: {"notebook": (ok, message), "exercises": {id: (ok, message)}}.

    `hidden` is (the hidden checks' files as (name, source), the ids they register, such as
    "06.2:long", each run on the solution of the exercise before the colon); `expected`, the exercise
    ids of the assignment: a notebook with others, or with none of them, is not run."""
    nb, problem = gradebook.read_submission(path)
    if nb is None:
        return {"notebook": (False, problem), "exercises": {}}
    exercises = {}
    for pair in exercise_pairs(nb):
        if pair.exercise_id and pair.exercise_id not in exercises:
            exercises[pair.exercise_id] = pair.source
    if expected is not None and (set(exercises) - set(expected) or not set(exercises) & set(expected)):
        why = (f"the wrong notebook: its checks are for {', '.join(sorted(exercises)) or 'no exercise'}, "
               f"the assignment's for {', '.join(expected)}; nothing was run")
        return {"notebook": (False, why), "exercises": {e: (False, "the wrong notebook was submitted")
                                                        for e in expected}}
    sources, hidden_ids = hidden
    jobs = [*exercises.items(), *((h, exercises[h.partition(":")[0]]) for h in hidden_ids
                                  if h.partition(":")[0] in exercises)]
    nonce = os.urandom(16).hex()
    run_job = json.dumps({"notebook": path.read_text(encoding="utf-8"), "timeout": timeout, "nonce": nonce,
                          "deadline": time_limit + 30, "startup": gradebook.startup_files()})
    check_job = json.dumps({"exercises": jobs, "timeout": timeout, "nonce": nonce, "hidden": list(sources)})
    with ThreadPoolExecutor(2) as pool:  # the run and the checks are independent
        ran = pool.submit(sandbox.run_child, RUN, run_job, memory_gb, time_limit, boundary)
        checked = pool.submit(sandbox.run_child, CHECK, check_job, memory_gb,
                              timeout * (len(jobs) + 1) + 60, boundary)
        try:
            (run_out, run_late), (check_out, _) = ran.result(), checked.result()
        except BaseException:  # Ctrl-C: stop the children now, so their scratch folders go with them
            sandbox.stop_all()
            raise
    status = _verdicts(run_out, nonce)
    if status:
        notebook = (bool(status[-1]["ok"]), str(status[-1]["message"]))
    elif run_late:
        notebook = (False, f"ran past the {time_limit} s limit for a notebook")
    else:
        notebook = (False, "the run crashed (out of memory?) before it could report")
    results = {eid: (bool(ok), str(message)) for eid, ok, message in _verdicts(check_out, nonce)}
    for eid, _ in jobs:
        results.setdefault(eid, (False, "the check did not finish (time limit or crash)"))
    return {"notebook": notebook, "exercises": results}


def grade(submissions: str | Path, out: str | Path = "grades.csv", timeout: int = 120,
          time_limit: int = 900, memory_gb: float = 16.0, progress: bool = True, regrade: bool = False,
          points: str | None = None, hidden_checks: str | None = None, assignment_name: str | None = None,
          boundary: sandbox.Boundary | None = None, overwrite: bool = False) -> list[dict]:
    """Grade every file in `submissions`, writing the outputs as each finishes; return the rows."""
    folder, out = Path(submissions), Path(out)
    if not folder.is_dir():
        raise ParameterError(f"The submissions folder {submissions} does not exist; give a folder of notebooks.")
    if timeout < 1 or time_limit < 1 or memory_gb <= 0:
        raise ParameterError("--timeout, --time-limit and --memory-gb must be greater than 0.")
    if memory_gb < MIN_MEMORY_GB:  # else every child dies importing torch, and everyone gets 0
        raise ParameterError(f"--memory-gb {memory_gb:g} is too little for a notebook to start (Python with torch "
                             f"needs more than 1.5 GB of address space); give {MIN_MEMORY_GB:g} or more "
                             "(the default is 16).")
    gradebook.check_out(out, folder)
    for stale in sandbox.remove_stale_scratch():
        print(f"removed {stale}, left by a grader that was killed (it held a copy of a submission)", file=sys.stderr)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ParameterError(f"The submissions folder {submissions} is empty.")
    expected, worth = gradebook.assignment(assignment_name or gradebook.target_notebook(files))
    worth.update(gradebook.read_points(points))
    sources, hidden = gradebook.load_hidden(hidden_checks)
    hidden_dirs = [NOTEBOOKS, REPO / ".git", RUNS, folder.resolve(), *([Path(hidden_checks).resolve()] if hidden_checks else [])]
    boundary = boundary or sandbox.Boundary(hidden=tuple(hidden_dirs))
    if boundary.problem:
        print(f"warning: grading without the boundary, because {boundary.problem}: submitted code runs "
              "as this user and can read and change what this user can (see CLASSROOM.md).", file=sys.stderr)
    ids = None if expected is None else expected + sorted(h for h in hidden if h.partition(":")[0] in expected)
    settings = {"timeout": timeout, "time_limit": time_limit, "memory_gb": memory_gb, "points": worth,
                "expected": expected, "hidden": sources, "boundary": not boundary.problem}
    book = gradebook.Gradebook(out, settings, regrade, worth, ids, boundary.problem, folder, overwrite)
    book.begin([p.stem for p in files])
    for path in files:
        t0, sha = time.perf_counter(), gradebook.digest(path)
        if book.already(path.stem, sha):
            if progress:
                print(f"{path.stem}: graded before with the same file (pass --regrade to grade again)")
            continue
        if book.stopped_on(path.stem, sha):  # it stopped the last run: recorded as failed, not run again
            why = ("the last grading run stopped while grading this submission (its code may have killed the "
                   "grader), so it was not run again; grade it with --regrade to try once more")
            print(f"{path.stem}: skipped: {why}", file=sys.stderr)
            book.record(path.stem, sha, {"notebook": (False, why), "exercises": {}})
            continue
        book.grading(path.stem, sha)
        try:
            result = grade_one(path, timeout, time_limit, memory_gb, boundary, (sources, sorted(hidden)), expected)
        except KeyboardInterrupt:  # the teacher's Ctrl-C, not the submission's doing: rerun it next time
            book.grading(None, None)
            raise
        book.record(path.stem, sha, result)
        if progress:
            passed = sum(ok for ok, _ in result["exercises"].values())
            print(f"{path.stem}: {passed} of {len(result['exercises'])} checks passed "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    book.finish()
    return book.rows()


def main(args: argparse.Namespace) -> int:
    try:
        rows = grade(args.submissions, args.out, args.timeout, args.time_limit, args.memory_gb,
                     regrade=args.regrade, points=args.points, hidden_checks=args.hidden_checks,
                     assignment_name=args.assignment, overwrite=args.overwrite)
    except KeyboardInterrupt:
        print(f"interrupted: {args.out} holds every submission graded so far (and says the run is incomplete); "
              "run the same command again to grade the rest (those graded are skipped).", file=sys.stderr)
        return 130
    print(gradebook.summary(rows))
    totals = gradebook.totals(rows)
    print("totals: " + ", ".join(f"{s} {got:g}/{most:g}" for s, (got, most) in totals.items()))
    print(f"{len(totals)} submissions; the table is in {args.out} (and {Path(args.out).stem}-lms.csv, "
          f"{Path(args.out).stem}-feedback/)")
    return 0
