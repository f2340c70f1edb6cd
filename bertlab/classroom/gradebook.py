"""What `python -m bertlab grade` grades against, and what it writes as each student finishes.

The grade of a check is its points (1 unless ``--points FILE`` or the ``points`` metadata of
the assignment's check cell says otherwise) if it passed, else 0; ``--assignment`` fixes the
exercises expected; ``--hidden-checks`` adds teacher-only checks (CLASSROOM.md). Beside
``--out grades.csv``:
- ``grades.csv``: long form, one row per student and check: student, exercise, passed,
  message, points, max_points (the ``notebook`` row says whether the notebook ran);
- ``grades-lms.csv``: one row per student, one column of points per check, and ``total``,
  for a gradebook import (Moodle, Canvas, ...);
- ``grades-feedback/STUDENT.md``: each check's message for the student, and the total;
- ``grades.state.json``: each student's submission hash and results, so that a rerun skips
  whoever was already graded with the same file and the same settings;
- ``grades.incomplete``: there while grading runs; still there after it stopped means the
  run did not finish (the CSVs hold everyone graded so far): rerun the same command.
Every file is replaced atomically (`bertlab.results.write_atomic`), never half-written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bertlab.classroom.student import exercise_pairs, read_notebook
from bertlab.errors import ParameterError
from bertlab.results import write_atomic, write_json_atomic

NOTEBOOK_ROW = "notebook"
FIELDS = ["student", "exercise", "passed", "message", "points", "max_points"]


def check_out(out: Path, submissions: Path) -> None:
    """Refuse, in one sentence, an --out that is a folder, lies in the submissions, or is a
    file that no grading run wrote (no STEM.state.json beside it), which it would replace."""
    if out.is_dir():
        raise ParameterError(f"--out {out} is a folder; give the CSV file to write, such as grades.csv.")
    state = out.with_name(f"{out.stem}.state.json")
    if out.exists() and not state.exists():
        raise ParameterError(f"--out {out} already exists and no grading run wrote it (there is no {state.name} "
                             "beside it); give another --out, or move the file away.")
    if out.resolve().is_relative_to(submissions.resolve()):
        raise ParameterError(f"--out {out} is inside the submissions folder {submissions}, where the "
                             "next run would grade it as a student; write it elsewhere, such as grades.csv.")


def load_hidden(folder: str | Path | None) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The hidden checks in `folder`: ([(file stem, source)], {id: title}); one clear error
    for a folder that is missing or empty, a file that does not load, or a bad id."""
    if not folder:
        return [], {}
    from bertlab import check  # heavy (torch)

    files = sorted(Path(folder).glob("*.py")) if Path(folder).is_dir() else []
    if not files:
        raise ParameterError(f"--hidden-checks {folder} is not a folder of python files.")
    registry = check._registry()
    saved = dict(registry)
    try:
        for path in files:
            try:
                exec(compile(path.read_text(), str(path), "exec"), {"__name__": f"bertlab.hidden.{path.stem}"})
            except (Exception, SystemExit) as err:  # a file that calls exit() must not end the grader
                why = f"it calls exit({err.code!r})" if isinstance(err, SystemExit) else f"{type(err).__name__}: {err}"
                raise ParameterError(f"The hidden check {path.name} does not load ({why}); fix it and grade again.") from None
        added = {k: v.title for k, v in registry.items() if k not in saved}
    finally:
        registry.clear()
        registry.update(saved)
    for hid in added:
        if hid.partition(":")[0] not in saved or not hid.partition(":")[2]:
            raise ParameterError(f"The hidden check {hid!r} must be named 'NN.K:label' after a known exercise, such as '06.2:long'.")
    if not added:
        raise ParameterError(f"--hidden-checks {folder} registers no check; use @base.register('06.2:label', ...).")
    return [(p.stem, p.read_text()) for p in files], added


def assignment(name: str | None) -> tuple[list[str] | None, dict[str, float]]:
    """The exercise ids of the teacher notebook `name` (a number or a path) and the points
    its check cells' metadata give; (None, {}) without an assignment."""
    if not name:
        return None, {}
    nb = read_notebook(name)  # a number finds notebooks/NN_*.ipynb
    pairs = [p for p in exercise_pairs(nb) if p.exercise_id]
    if not pairs:
        raise ParameterError(f"--assignment {name} is a notebook without exercises.")
    points = {p.exercise_id: float(nb.cells[p.check_index].metadata["points"]) for p in pairs
              if p.check_index is not None and "points" in nb.cells[p.check_index].metadata}
    return list(dict.fromkeys(p.exercise_id for p in pairs)), points


def target_notebook(files: list[Path]) -> str:
    """Without --assignment: the notebook whose exercises most submissions hold (each file counts
    for the notebook most of its exercises belong to), said in one line; one sentence asking for
    --assignment when no notebook has most. Else a pasted notebook's exercises would become
    columns of everyone's grades, at 0."""
    votes: Counter[str] = Counter()
    for path in files:
        nb, _ = read_submission(path)
        ids = [p.exercise_id for p in exercise_pairs(nb) if p.exercise_id] if nb is not None else []
        if ids:
            votes[Counter(i.partition(".")[0] for i in ids).most_common(1)[0][0]] += 1
    if not votes:
        return ""
    (first, n), *rest = votes.most_common()
    if rest and rest[0][1] == n:
        counts = ", ".join(f"notebook {k}: {v}" for k, v in sorted(votes.items()))
        raise ParameterError(f"The submissions hold the exercises of several notebooks ({counts} files) and none has "
                             "most; give --assignment NN to say which notebook is graded.")
    try:
        read_notebook(first)  # a course notebook: its exercises are the assignment
    except Exception:
        return ""  # a teacher's own numbering: every exercise found is graded, as before
    if rest:
        print(f"no --assignment: grading notebook {first}'s exercises, which {n} of {sum(votes.values())} submissions "
              "hold (the others are recorded as the wrong notebook); give --assignment to choose", file=sys.stderr)
    return first


def startup_files() -> dict[str, str]:
    """The teacher's IPython start-up files ($IPYTHONDIR), which every kernel runs first."""
    folder = Path(os.environ.get("IPYTHONDIR") or "/nonexistent") / "profile_default" / "startup"
    return {p.name: p.read_text() for p in sorted(folder.glob("*.py"))} if folder.is_dir() else {}


def read_points(path: str | None) -> dict[str, float]:
    if not path:
        return {}
    try:
        points = json.loads(Path(path).read_text())
        if isinstance(points, dict) and all(isinstance(v, int | float) and v >= 0 for v in points.values()):
            return {str(k): float(v) for k, v in points.items()}
    except (OSError, ValueError):
        pass
    raise ParameterError(f"--points {path} must be a JSON file like {{\"06.2\": 2}}, with numbers of 0 or more.")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settings_key(settings: dict[str, Any]) -> str:
    """A hash of everything that decides a grade: limits, points, assignment, hidden checks
    and the whole package (its reference checks, and the code they call), so changing one
    regrades all, and a package changed by a submission is never taken for the same settings."""
    package = Path(__file__).resolve().parents[1]
    files = sorted(package.rglob("*.py"))
    text = json.dumps(settings, sort_keys=True) + "".join(f"{p.relative_to(package)}\0{p.read_text()}" for p in files)
    return hashlib.sha256(text.encode()).hexdigest()


def _number(x: float) -> str:
    return f"{x:g}"


def _cell(value: Any) -> Any:
    """A CSV cell safe to open in a spreadsheet: text starting with =, +, -, @ (or a tab or a
    carriage return) is a formula there (=HYPERLINK(...) in a student's file name), so it gets
    a leading apostrophe, which spreadsheets show as text (OWASP's advice on CSV injection)."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def totals(rows: list[dict]) -> dict[str, tuple[float, float]]:
    """Each student's (points, points possible) over the rows of `Gradebook.rows`."""
    out: dict[str, tuple[float, float]] = {}
    for row in rows:
        got, most = out.get(row["student"], (0.0, 0.0))
        out[row["student"]] = (got + row["points"], most + row["max_points"])
    return out


class Gradebook:
    """The outputs of one grading run, rewritten after each student (see the module doc)."""

    def __init__(self, out: str | Path, settings: dict[str, Any], regrade: bool = False,
                 points: dict[str, float] | None = None, ids: list[str] | None = None,
                 boundary: str = "", submissions: str | Path = "", overwrite: bool = False) -> None:
        self.out = Path(out)
        stem = self.out.stem
        self.lms = self.out.with_name(f"{stem}-lms.csv")
        self.feedback = self.out.with_name(f"{stem}-feedback")
        self.state_path = self.out.with_name(f"{stem}.state.json")
        self.marker = self.out.with_name(f"{stem}.incomplete")
        self.key, self.points, self.ids, self.boundary = settings_key(settings), points or {}, ids, boundary
        self.submissions = str(Path(submissions).resolve()) if submissions else ""
        self.students: dict[str, dict] = {}
        self.total = 0
        self.stopped_at: dict[str, str] = {}  # the submission being graded when a run stopped
        state = {}
        if self.state_path.is_file():
            try:
                state = json.loads(self.state_path.read_text())
            except (OSError, ValueError):
                state = {}
        earlier = state.get("submissions")
        if earlier and self.submissions and earlier != self.submissions and not overwrite:
            raise ParameterError(f"--out {self.out} holds the grades of another submissions folder ({earlier}); "
                                 "give another --out, or pass --overwrite to replace them.")
        if not regrade and state.get("settings") == self.key and earlier in (None, self.submissions):
            self.students = dict(state.get("students", {}))
            self.stopped_at = dict(state.get("grading") or {})

    def stopped_on(self, student: str, sha256: str) -> bool:
        """Whether the last run stopped while grading this very file (a submission can kill the
        grader): it is then recorded as failed and skipped, not run again, unless --regrade."""
        return self.stopped_at == {"student": student, "sha256": sha256}

    def grading(self, student: str | None, sha256: str | None) -> None:
        """Note, before running it, which submission is being graded (see `stopped_on`); None: none."""
        self._write_state(grading={"student": student, "sha256": sha256} if student else None)

    def begin(self, present: list[str]) -> None:
        """Forget students who are no longer in the folder; mark the run as not finished and
        rewrite the outputs at once, so that an older grades.csv never looks current."""
        self.students = {s: r for s, r in self.students.items() if s in present}
        self.total = len(present)
        self._write()

    def already(self, student: str, sha256: str) -> bool:
        """Whether this student was graded with the same file (and the same settings)."""
        return self.students.get(student, {}).get("sha256") == sha256

    def record(self, student: str, sha256: str, result: dict) -> None:
        self.students[student] = {"sha256": sha256, "graded_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "notebook": list(result["notebook"]),
                                  "exercises": {k: list(v) for k, v in result["exercises"].items()}}
        self._write(student)

    def finish(self) -> None:
        self._write(complete=True)
        self.marker.unlink(missing_ok=True)

    def exercise_ids(self) -> list[str]:
        if self.ids is not None:
            return self.ids
        return sorted({e for r in self.students.values() for e in r["exercises"]})

    def rows(self) -> list[dict]:
        """The long-form table, one row per student and check (the notebook row first)."""
        rows = []
        for student, r in sorted(self.students.items()):
            nb_ok, nb_message = r["notebook"]
            rows.append({"student": student, "exercise": NOTEBOOK_ROW, "passed": nb_ok,
                         "message": nb_message, "points": 0, "max_points": 0})
            for eid in self.exercise_ids():
                default = [False, "no solution cell for this exercise" if r["exercises"] or nb_ok else nb_message]
                ok, message = r["exercises"].get(eid, default)
                worth = float(self.points.get(eid, 1))
                rows.append({"student": student, "exercise": eid, "passed": bool(ok), "message": message,
                             "points": worth if ok else 0, "max_points": worth})
        return rows

    def _write(self, student: str | None = None, complete: bool = False) -> None:
        rows = self.rows()
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**{k: _cell(v) for k, v in r.items()}, "points": _number(r["points"]),
                          "max_points": _number(r["max_points"])} for r in rows)
        ids, sums = self.exercise_ids(), totals(rows)
        lms = io.StringIO()
        table = csv.writer(lms, lineterminator="\n")
        table.writerow(["student", *ids, "total"])
        by_key = {(r["student"], r["exercise"]): r["points"] for r in rows}
        for name in sorted(self.students):
            table.writerow([_cell(name), *(_number(by_key[(name, e)]) for e in ids), _number(sums[name][0])])
        if not complete:
            write_atomic(self.marker, f"Grading started; {len(self.students)} of {self.total} "
                                      f"submissions graded so far, and {self.out.name} holds those. If the "
                                      "grader has stopped, the run did not finish: rerun the same command.\n")
        write_atomic(self.out, text.getvalue())
        write_atomic(self.lms, lms.getvalue())
        self._write_state(complete=complete)
        if student is not None:
            write_atomic(self.feedback / f"{student}.md", self.feedback_text(student, rows, sums))

    def _write_state(self, complete: bool = False, grading: dict[str, str] | None = None) -> None:
        write_json_atomic(self.state_path, {"settings": self.key, "complete": complete,
                                            "boundary": self.boundary or "in force", "submissions": self.submissions,
                                            "grading": grading, "students": self.students})

    def feedback_text(self, student: str, rows: list[dict], sums: dict) -> str:
        """One student's Markdown feedback: the total and each check's message."""
        got, most = sums[student]
        lines = [f"# Feedback for {student}", "", f"**Total: {_number(got)} of {_number(most)} points.**", "",
                 "| check | result | points | message |", "|---|---|---|---|"]
        for r in rows:
            if r["student"] == student:
                mark = "✓" if r["passed"] else "✗"
                message = str(r["message"]).replace("|", "\\|").replace("\n", " ")
                worth = "" if r["exercise"] == NOTEBOOK_ROW else f"{_number(r['points'])} / {_number(r['max_points'])}"
                lines.append(f"| {r['exercise']} | {mark} | {worth} | {message} |")
        if self.boundary:
            lines += ["", f"(Graded without the boundary: {self.boundary}.)"]
        return "\n".join(lines) + "\n"


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


def summary(rows: list[dict]) -> str:
    """Per exercise: how many students passed, and its title; then each student's total."""
    from bertlab import check  # heavy (torch): see the note on imports at the top
    from bertlab.classroom import report  # heavy (torch), as above

    registry = check._registry()
    order = list(dict.fromkeys(r["exercise"] for r in rows))
    table = []
    for eid in order:
        mine = [r for r in rows if r["exercise"] == eid]
        title = "the notebook ran (ci profile)" if eid == NOTEBOOK_ROW else (
            registry[eid].title if eid in registry else
            "(a hidden check)" if ":" in eid else "(not a registered exercise)")
        table.append([eid, title, f"{sum(r['passed'] for r in mine)}/{len(mine)}"])
    return report.text_table(["exercise", "title", "passed"], table)
