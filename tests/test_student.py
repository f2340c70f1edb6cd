"""Student editions: no solution left, stubs that fail kindly, and the exercise convention.

Runs over every notebook in notebooks/ present at test time, plus a small fixture. Only the
solution and check cells run (in this process), never whole notebooks, to stay fast.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import nbformat
import pytest

from bertlab import check
from bertlab.__main__ import main
from bertlab.classroom import student

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "exercises_fixture.ipynb"
TEACHER = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")) + [FIXTURE]
IDS = [p.stem for p in TEACHER]


@pytest.fixture(scope="module")
def editions(tmp_path_factory) -> Path:
    """Student editions of every teacher notebook, written by the command itself."""
    out = tmp_path_factory.mktemp("student")
    assert main(["student", *map(str, TEACHER), "--out", str(out)]) == 0
    return out


def read(path: Path):
    return nbformat.read(str(path), as_version=4)


def function_bodies(source: str) -> dict[str, list[ast.stmt]]:
    """{qualified name: body without its docstring} for every def in a cell."""
    bodies = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                    sub.qualname = f"{node.name}.{sub.name}"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            bodies[getattr(node, "qualname", node.name)] = body
    return bodies


def bound_names(tree: ast.AST) -> set[str]:
    """Names a cell binds: assignments, defs, imports, arguments, loop targets."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


@pytest.mark.parametrize("teacher", TEACHER, ids=IDS)
def test_exercise_convention(teacher):
    """Every solution is followed by a check of a registered id, holds only imports and defs,
    and no later cell uses what it defines."""
    nb = read(teacher)
    pairs = student.exercise_pairs(nb)
    registry = check._registry()
    if teacher != FIXTURE:
        assert len(pairs) >= 2, f"{teacher.name}: at least two exercises (solution + check pairs)"
    for pair in pairs:
        where = f"{teacher.name} cell {pair.solution_index + 1}"
        assert pair.check_index is not None, f"{where}: the next code cell must be tagged 'check'"
        assert pair.exercise_id in registry, f"{where}: check.exercise with a registered id, got {pair.exercise_id!r}"
        assert not student.solution_problems(pair.source), f"{where}: only imports and defs"
        assert nb.cells[pair.solution_index].metadata.get("jupyter", {}).get("source_hidden"), \
            f"{where}: solution cells are collapsed (metadata jupyter.source_hidden)"
        defined = set(student.defined_names(pair.source))
        assert set(registry[pair.exercise_id].names) <= defined, f"{where}: defines {registry[pair.exercise_id].names}"
        shadowed: set[str] = set()
        for k in range(pair.solution_index + 1, len(nb.cells)):
            cell = nb.cells[k]
            if cell.cell_type != "code" or k == pair.check_index:
                continue
            try:
                tree = ast.parse(student.python_source(cell.source))
            except SyntaxError:
                continue
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            leaked = (used & defined) - shadowed - bound_names(tree)
            assert not leaked, f"{teacher.name} cell {k + 1} uses {sorted(leaked)} from exercise {pair.exercise_id}"
            shadowed |= bound_names(tree) & defined


@pytest.mark.parametrize("teacher", TEACHER, ids=IDS)
def test_student_edition_has_no_solution(teacher, editions):
    nb, edition = read(teacher), read(editions / teacher.name)
    assert len(edition.cells) == len(nb.cells)
    pairs = student.exercise_pairs(nb)
    assert [p.exercise_id for p in student.exercise_pairs(edition)] == [p.exercise_id for p in pairs]
    for pair in pairs:
        stub = edition.cells[pair.solution_index]
        teacher_bodies = function_bodies(pair.source)
        stub_bodies = function_bodies(stub.source)
        assert set(stub_bodies) == set(teacher_bodies), "every def is kept, by name"
        stub_dumps = {ast.dump(n) for n in ast.walk(ast.parse(stub.source)) if isinstance(n, ast.stmt)}
        for name, body in stub_bodies.items():
            assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{name}: body is one raise"
            assert "NotImplementedError" in ast.unparse(body[0])
            assert f"Exercise {pair.exercise_id}: write" in ast.unparse(body[0])
            for stmt in teacher_bodies[name]:
                assert ast.dump(stmt) not in stub_dumps, f"{name}: solution code left in the stub"
        teacher_tree, stub_tree = ast.parse(pair.source), ast.parse(stub.source)
        for a, b in zip(teacher_tree.body, stub_tree.body, strict=True):  # same imports, same signatures
            assert type(a) is type(b)
            if isinstance(a, ast.FunctionDef):
                assert ast.dump(a.args) == ast.dump(b.args) and ast.get_docstring(a) == ast.get_docstring(b)
        assert "source_hidden" not in stub.metadata.get("jupyter", {}), "the learner sees the stub"
        assert "solution" in stub.metadata.get("tags", []), "the grader still finds the solution cell"
        for cell in (stub, edition.cells[pair.check_index]):
            assert cell.outputs == [] and cell.execution_count is None
        assert edition.cells[pair.check_index].source == nb.cells[pair.check_index].source


def run_pair(solution_source: str, check_source: str) -> None:
    """Run one exercise's solution and check cells in a fresh namespace."""
    namespace: dict = {}
    exec(compile(solution_source, "<solution>", "exec"), namespace)
    exec(compile(check_source, "<check>", "exec"), namespace)


@pytest.mark.parametrize("teacher", TEACHER, ids=IDS)
def test_checks_pass_on_teacher_and_fail_kindly_on_student(teacher, editions, capsys):
    nb, edition = read(teacher), read(editions / teacher.name)
    for pair in student.exercise_pairs(nb):
        check_source = nb.cells[pair.check_index].source
        run_pair(pair.source, check_source)  # the teacher edition passes as before
        assert "✓" in capsys.readouterr().out
        stub = edition.cells[pair.solution_index].source
        with pytest.raises(check.CheckFailed) as failed:
            run_pair(stub, check_source)
        shown = failed.value._render_traceback_()
        assert len(shown) == 1 and "\n" not in shown[0], "one friendly line, not a traceback wall"
        assert "not written yet" in shown[0] and pair.exercise_id in shown[0]
        namespace: dict = {}
        exec(stub, namespace)
        assert check.run_exercise(pair.exercise_id, namespace)[0] is False


def test_stub_keeps_imports_signatures_and_classes():
    source = '''import torch
from torch import nn


class Momentum(nn.Module):
    """SGD with momentum."""

    beta = 0.9

    def __init__(self, lr: float = 0.1):
        self.lr = lr

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> torch.Tensor:
        """One step; returns the update."""
        return -self.lr * grad


async def fetch(x):
    return await x
'''
    stub = student.stub_source(source, "03.4")
    assert stub.startswith("import torch\nfrom torch import nn\n\n\nclass Momentum(nn.Module):")
    assert '@torch.no_grad()\n    def step(self, grad: torch.Tensor) -> torch.Tensor:' in stub
    assert '"""One step; returns the update."""\n        # YOUR CODE HERE\n' in stub
    assert 'raise NotImplementedError("Exercise 03.4: write Momentum.step")' in stub
    assert 'raise NotImplementedError("Exercise 03.4: write fetch")' in stub
    assert "self.lr = lr" not in stub and "await" not in stub and "beta" not in stub
    ast.parse(stub)


def test_solution_cell_with_other_code_is_one_clear_error():
    with pytest.raises(student.BertlabError, match="only imports and defs, but line 3 is `x = 1`"):
        student.stub_source("import math\n\nx = 1\n", "00.1")


@pytest.mark.parametrize("case", ["missing", "not_json", "no_notebooks", "into_teacher_folder"])
def test_bad_input_is_one_sentence(case, tmp_path, capsys):
    args = {
        "missing": [str(tmp_path / "nope.ipynb")],
        "not_json": [str(tmp_path / "broken.ipynb")],
        "no_notebooks": [str(tmp_path / "empty")],
        "into_teacher_folder": [str(tmp_path / "teacher" / FIXTURE.name)],
    }[case]
    (tmp_path / "broken.ipynb").write_text("{not json")
    (tmp_path / "empty").mkdir()
    (tmp_path / "teacher").mkdir()
    shutil.copy(FIXTURE, tmp_path / "teacher")  # a copy: were the refusal broken, nothing in tests/ is overwritten
    out = tmp_path / "teacher" if case == "into_teacher_folder" else tmp_path / "out"
    assert main(["student", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err


def test_editions_never_replace_a_different_notebook_without_asking(tmp_path, capsys):
    """--out a file is refused; a rerun that changes nothing is fine; a changed notebook of the
    same name (a student's work, an older edition) is replaced only with --overwrite."""
    (tmp_path / "notes.md").write_text("mine")
    assert main(["student", str(FIXTURE), "--out", str(tmp_path / "notes.md")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err and (tmp_path / "notes.md").read_text() == "mine"
    out = tmp_path / "student"
    assert main(["student", str(FIXTURE), "--out", str(out)]) == 0
    assert main(["student", str(FIXTURE), "--out", str(out)]) == 0  # the same edition again: no change
    edition = out / FIXTURE.name
    edition.write_text(edition.read_text().replace("YOUR CODE HERE", "my attempt"))
    capsys.readouterr()
    assert main(["student", str(FIXTURE), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "already exists and differs from the new edition" in err and "--overwrite" in err and "\n" not in err
    assert "my attempt" in edition.read_text()
    assert main(["student", str(FIXTURE), "--out", str(out), "--overwrite"]) == 0
    assert "my attempt" not in edition.read_text()


def test_the_solutions_edition_shows_every_solution(tmp_path, capsys):
    out = tmp_path / "solutions"
    assert main(["student", str(FIXTURE), str(REPO / "notebooks" / "06_embeddings.ipynb"),
                 "--out", str(out), "--solutions"]) == 0
    assert "2 solutions editions in" in capsys.readouterr().out
    for teacher in (FIXTURE, REPO / "notebooks" / "06_embeddings.ipynb"):
        nb, released = read(teacher), read(out / teacher.name)
        assert "Solutions edition" in released.cells[0].source and len(released.cells) == len(nb.cells) + 1
        pairs = student.exercise_pairs(released)
        assert [p.source for p in pairs] == [p.source for p in student.exercise_pairs(nb)] and pairs
        for p in pairs:
            assert "NotImplementedError" not in p.source
            assert not released.cells[p.solution_index].metadata.get("jupyter", {}).get("source_hidden")
        assert "widgets" not in released.metadata
    assert main(["student", str(FIXTURE), "--out", str(out), "--solutions"]) == 0  # a rerun is no change
