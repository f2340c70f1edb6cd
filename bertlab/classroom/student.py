"""``python -m bertlab student notebooks/ --out student/``: student editions without solutions.

In a teacher notebook each exercise is a pair of code cells (CONTRIBUTING.md): a cell
tagged `solution` that holds only imports and defs, then a cell tagged `check` that calls
``check.exercise("03.1", sgd_step)``. The student edition keeps every import, and every
def's signature and docstring, but replaces each body with
``raise NotImplementedError("Exercise 03.1: write sgd_step")``; it clears the outputs of
the solution and check cells and keeps the checks, which then fail with one friendly line
until the learner writes the code. The grader (`bertlab.classroom.grade`) reads the same pairs.
``--solutions`` writes the solutions edition instead (solutions shown, outputs kept), to
release after the deadline. A notebook already in ``--out`` that would change is replaced
only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertlab.classroom import notebooks
from bertlab.errors import BertlabError, ParameterError

SOLUTION, CHECK = "solution", "check"
_STUB = "__bertlab_stub_{}__"


@dataclass(frozen=True)
class ExercisePair:
    """One exercise in a notebook: its id, the solution cell and the check cell after it."""

    exercise_id: str  # "" when the check cell names no exercise
    solution_index: int  # index of the cell tagged `solution` in nb.cells
    check_index: int | None  # index of the `check` cell right after it (None if missing)
    source: str  # the solution cell's source


def tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def python_source(source: str) -> str:
    """A cell's source as plain Python (IPython magics such as %matplotlib turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def check_ids(source: str) -> list[str]:
    """The exercise ids that a check cell passes to ``check.exercise("NN.K", ...)``."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return []
    ids = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name == "exercise" and isinstance(first, ast.Constant) and isinstance(first.value, str):
                ids.append(first.value)
    return ids


def exercise_pairs(nb: Any) -> list[ExercisePair]:
    """Every `solution` cell with the exercise id of the `check` cell that follows it."""
    pairs = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or SOLUTION not in tags(cell):
            continue
        after = next((j for j in range(i + 1, len(nb.cells)) if nb.cells[j].cell_type == "code"), None)
        check_index = after if after is not None and CHECK in tags(nb.cells[after]) else None
        ids = check_ids(nb.cells[check_index].source) if check_index is not None else []
        pairs.append(ExercisePair(ids[0] if ids else "", i, check_index, cell.source))
    return pairs


def defined_names(source: str) -> list[str]:
    """The functions and classes that a solution cell defines (top level)."""
    tree = ast.parse(python_source(source))
    return [n.name for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def solution_problems(source: str) -> list[str]:
    """What in a solution cell breaks the rule "only imports and defs" (empty when fine)."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError as err:
        return [f"it is not valid Python ({err.msg}, line {err.lineno})"]
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [f"line {node.lineno} is `{ast.unparse(node).splitlines()[0]}`"
            for node in tree.body if not isinstance(node, allowed) and not _is_docstring(node)]


def _stub_def(node: ast.FunctionDef | ast.AsyncFunctionDef, messages: list[str],
              exercise_id: str, qualname: str) -> ast.stmt:
    """A copy of `node` whose body is its docstring (if any) and a placeholder."""
    stub = copy.deepcopy(node)
    keep = [node.body[0]] if _is_docstring(node.body[0]) else []
    stub.body = keep + [ast.Expr(ast.Name(_STUB.format(len(messages)), ast.Load()))]
    messages.append(f"Exercise {exercise_id}: write {qualname}")
    return stub


def stub_source(source: str, exercise_id: str) -> str:
    """The student's version of a solution cell: imports, signatures and docstrings only.

    Raises `BertlabError` if the cell holds anything but imports and defs.
    """
    problems = solution_problems(source)
    if problems:
        raise BertlabError(f"A solution cell may hold only imports and defs, but {problems[0]}.")
    tree = ast.parse(python_source(source))
    messages: list[str] = []
    blocks = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node = _stub_def(node, messages, exercise_id, node.name)
        elif isinstance(node, ast.ClassDef):
            stub = copy.deepcopy(node)
            body = [n for n in node.body[:1] if _is_docstring(n)]
            body += [_stub_def(n, messages, exercise_id, f"{node.name}.{n.name}")
                     for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            stub.body = body or [ast.Pass()]
            node = stub
        blocks.append((isinstance(node, ast.Import | ast.ImportFrom), ast.unparse(node)))
    text = ""
    for k, (is_import, code) in enumerate(blocks):
        if k:
            text += "\n" if is_import and blocks[k - 1][0] else "\n\n\n"
        text += code
    for k, message in enumerate(messages):  # the placeholder's indentation is the body's
        text = re.sub(rf"^( *){_STUB.format(k)}$",
                      lambda m, msg=message: f"{m[1]}# YOUR CODE HERE\n"
                                             f'{m[1]}raise NotImplementedError("{msg}")',
                      text, flags=re.MULTILINE)
    return text + "\n"


def _clear(cell: Any) -> None:
    cell.outputs = []
    cell.execution_count = None


def student_edition(nb: Any, number: str = "") -> Any:
    """A copy of a teacher notebook with each solution replaced by a stub (see the module doc)."""
    out = copy.deepcopy(nb)
    for k, pair in enumerate(exercise_pairs(out), start=1):
        cell = out.cells[pair.solution_index]
        exercise_id = pair.exercise_id or f"{number or '?'}.{k}"
        cell.source = stub_source(pair.source, exercise_id).rstrip("\n")
        cell.metadata.get("jupyter", {}).pop("source_hidden", None)  # the learner works here
        if not cell.metadata.get("jupyter", True):
            cell.metadata.pop("jupyter")
        _clear(cell)
        if pair.check_index is not None:
            _clear(out.cells[pair.check_index])
    out.metadata.pop("widgets", None)
    return out


def read_notebook(path: str | Path) -> Any:
    """Read a notebook; a missing file or one that is not a notebook is one clear error."""
    import nbformat

    path = notebooks.find(path)  # checks existence, the .ipynb suffix and the JSON
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as err:  # valid JSON but not a notebook
        raise ParameterError(f"{path.name} is not a Jupyter notebook ({type(err).__name__}).") from None


def notebook_paths(sources: list[str]) -> list[Path]:
    """Expand folders into their notebooks (sorted); check each named file."""
    paths: list[Path] = []
    for source in sources:
        folder = Path(source)
        if folder.is_dir():
            found = sorted(folder.glob("*.ipynb"))
            if not found:
                raise ParameterError(f"The folder {source} holds no notebooks (.ipynb files).")
            paths += found
        else:
            paths.append(notebooks.find(source))
    return paths


def solutions_edition(nb: Any) -> Any:
    """A copy of a teacher notebook to release after the deadline: every solution cell shown
    (not collapsed), outputs kept, a note on top; no widget state."""
    import nbformat

    out = copy.deepcopy(nb)
    for pair in exercise_pairs(out):
        meta = out.cells[pair.solution_index].metadata
        meta.get("jupyter", {}).pop("source_hidden", None)
        if not meta.get("jupyter", True):
            meta.pop("jupyter")
    note = ("**Solutions edition.** Each exercise's solution is shown in the cell tagged `solution` "
            "below its task; the check after it passes.")
    out.cells.insert(0, nbformat.v4.new_markdown_cell(note, metadata={"tags": ["solutions-edition"]}))
    out.cells[0]["id"] = "solutions-edition"  # the same file each time, so a rerun is no change
    out.metadata.pop("widgets", None)
    return out


def write_student_editions(sources: list[str], out: str | Path, overwrite: bool = False,
                           solutions: bool = False) -> list[Path]:
    """Write a student edition (or, with `solutions`, a solutions edition) of each notebook
    (or folder of notebooks) into `out`. Nothing is written if `out` is a file or the teacher
    notebooks' folder, or if it holds a different notebook of the same name (a student's work,
    an older edition) and `overwrite` is False."""
    import nbformat

    out = Path(out)
    paths = notebook_paths(sources)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out} is a file; give a folder for the editions, such as student/.")
    if any(p.resolve().parent == out.resolve() for p in paths) or out.resolve() == notebooks.NOTEBOOKS:
        raise ParameterError(f"--out {out} is where the teacher notebooks are; pick another folder.")
    texts = {}
    for path in paths:
        number = m[0] if (m := re.match(r"\d+", path.name)) else ""
        nb = read_notebook(path)
        edition = solutions_edition(nb) if solutions else student_edition(nb, number)
        texts[out / path.name] = nbformat.writes(edition)
    differs = [t for t, text in texts.items() if t.exists() and t.read_text(encoding="utf-8") != text]
    if differs and not overwrite:
        raise ParameterError(f"{differs[0]} already exists and differs from the new edition "
                             f"({len(differs)} such file{'s' * (len(differs) != 1)}); pass --overwrite "
                             "to replace them, or give another --out.")
    out.mkdir(parents=True, exist_ok=True)
    for target, text in texts.items():
        target.write_text(text, encoding="utf-8")
    return list(texts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebooks", nargs="+", help="teacher notebooks, or folders of them")
    parser.add_argument("--out", default="student", help="folder for the editions (default student/)")
    parser.add_argument("--solutions", action="store_true",
                        help="write the solutions edition (solutions shown) to release after the deadline")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace notebooks of the same name that differ in --out")


def main(args: argparse.Namespace) -> int:
    written = write_student_editions(args.notebooks, args.out, args.overwrite, args.solutions)
    kind = "solutions" if args.solutions else "student"
    for path in written:
        count = len(exercise_pairs(read_notebook(path)))
        done = "solved" if args.solutions else "left for the learner"
        print(f"{path}: {count} exercise{'s' * (count != 1)} {done}")
    print(f"{len(written)} {kind} edition{'s' * (len(written) != 1)} in {args.out}/")
    return 0
