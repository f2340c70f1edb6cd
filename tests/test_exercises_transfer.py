"""Exercises transfer: no solution retypes code that its notebook has already shown.

An exercise that asks for a function the notebook wrote out a few cells earlier only tests
copying. For every notebook, every function body in a cell tagged `solution` is compared
with every earlier code cell that is not an exercise (not tagged `solution` or `check`):
the code is normalised (parsed and unparsed, so comments, blank lines and spacing do not
count; each line stripped; `return EXPR` and `name = EXPR` both reduced to `EXPR`, so that
a value the notebook assigned and a solution returns compare equal), and three or more
consecutive lines of a solution's function body (the whole body, if it is shorter) that
also appear, consecutively, in an earlier cell fail the test.
"""

import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WINDOW = 3  # consecutive normalised lines that count as retyping
_TARGET = re.compile(r"^(return |[A-Za-z_][\w.]* = )")


def normalised_lines(source: str) -> list[str]:
    """The code's lines without comments, blank lines or layout: parsed, unparsed, stripped."""
    kept = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        text = ast.unparse(ast.parse(kept))
    except SyntaxError:  # not Python (a shell line we did not catch): compare the text itself
        text = "\n".join(line.split("#", 1)[0] for line in kept.splitlines())
    lines = (" ".join(line.split()) for line in text.splitlines() if line.strip())
    return [_TARGET.sub("", line) for line in lines]


def function_bodies(source: str) -> dict[str, list[str]]:
    """Each function (or method) of a solution cell: its body's normalised lines, docstring left out."""
    bodies = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            bodies[node.name] = [line for stmt in body for line in normalised_lines(ast.unparse(stmt))]
    return bodies


def repeated_window(body: list[str], earlier: list[str], window: int = WINDOW) -> list[str] | None:
    """The first `window` consecutive lines of `body` (all of it, if shorter) that occur
    consecutively in `earlier`."""
    window = min(window, len(body))
    if window == 0:
        return None
    shown = {tuple(earlier[i:i + window]) for i in range(len(earlier) - window + 1)}
    for i in range(len(body) - window + 1):
        if tuple(body[i:i + window]) in shown:
            return body[i:i + window]
    return None


def retyped(cells: list[dict]) -> list[str]:
    """One sentence per solution function that repeats an earlier non-exercise code cell."""
    problems = []
    for k, cell in enumerate(cells):
        if cell["cell_type"] != "code" or "solution" not in cell["metadata"].get("tags", []):
            continue
        for name, body in function_bodies("".join(cell["source"])).items():
            for j in range(k):
                earlier = cells[j]
                tags = earlier["metadata"].get("tags", [])
                if earlier["cell_type"] != "code" or "solution" in tags or "check" in tags:
                    continue
                lines = repeated_window(body, normalised_lines("".join(earlier["source"])))
                if lines:
                    problems.append(f"cell {k} ({name}) repeats cell {j}: {' | '.join(lines)}")
                    break
    return problems


def _cell(source: str, tags: tuple[str, ...] = ()) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source}


def test_the_detector_flags_a_retyped_body_and_passes_a_new_one():
    shown = _cell("def sigmoid(z):\n    s = 1 / (1 + torch.exp(-z))  # the logistic\n    d = s * (1 - s)\n"
                  "    return   d\n")
    copied = _cell('def sigmoid_derivative(z):\n    """Task."""\n    s = 1/(1+torch.exp(-z))\n\n'
                   "    d = s*(1 - s)  # spacing and comments differ\n    return d\n", ("solution",))
    new = _cell('def silu_derivative(z):\n    """Task."""\n    s = torch.sigmoid(z)\n    d = s * (1 - s)\n'
                "    return s + z * d\n", ("solution",))
    assert retyped([shown, copied]) == ["cell 1 (sigmoid_derivative) repeats cell 0: "
                                        "1 / (1 + torch.exp(-z)) | s * (1 - s) | d"]
    assert retyped([shown, new]) == []
    assert retyped([copied, shown]) == []  # only *earlier* cells count
    assert retyped([_cell(shown["source"], ("check",)), copied]) == []  # and only non-exercise ones
    one_line = _cell('def step(theta, grad, lr):\n    """Task."""\n    return theta - lr * grad\n', ("solution",))
    assert retyped([_cell("right = theta - lr * grad\n"), one_line]) == [
        "cell 1 (step) repeats cell 0: theta - lr * grad"]  # a short body counts whole


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_retypes_earlier_code(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    problems = retyped(cells)
    assert not problems, f"{path.name}: exercises that retype code shown earlier:\n" + "\n".join(problems)
