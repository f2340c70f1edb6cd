"""Every committed notebook follows the course's standard (CONTRIBUTING.md)."""

import ast
import json
import re
from pathlib import Path

import papermill
import pytest

from bertlab.classroom import notebooks

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ABSOLUTE = re.compile(r"(/home/|/root/|/work/|/Users/|/tmp/|[A-Z]:\\\\Users)")


def test_the_course_has_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_setup.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb["metadata"] and "widgets" not in nb["metadata"]
    cells = nb["cells"]
    first = cells[0]
    assert first["cell_type"] == "code" and "parameters" in first["metadata"].get("tags", [])
    source = "".join(first["source"])
    tree = ast.parse(source)
    names = [n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)]
    assert names[:3] == ["profile", "seed", "metrics_path"], names
    assert all(isinstance(n, ast.AnnAssign) for n in tree.body), "parameters are typed assignments"
    for line in source.splitlines():
        if not line.startswith("#"):
            assert "#" in line, f"parameter without a comment: {line}"
            assert "=" not in line.split("#", 1)[1], f"'=' in a parameter comment breaks papermill: {line}"
    inspected = papermill.inspect_notebook(str(path))
    assert list(inspected) == names
    second = "".join(cells[1]["source"])
    assert "params." in second and "env.start(" in second, "the second cell checks parameters and calls env.start"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c.get("outputs") for c in code[1:3]), "committed with outputs from a run"
    assert any("results.record" in "".join(c["source"]) for c in code)
    for cell in cells:
        assert "papermill" not in cell["metadata"] and "execution" not in cell["metadata"]
        text = json.dumps(cell.get("outputs", [])) + "".join(cell["source"])
        assert not ABSOLUTE.search(text), f"absolute path in {path.name}: {ABSOLUTE.search(text).group(0)}"
        if cell["cell_type"] == "code":
            assert "application/vnd.jupyter.widget-view+json" not in text, f"widget output in {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_are_paired_with_registered_checks(path):
    from bertlab.check import _registry

    registry = _registry()
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    ids = []
    for i, cell in enumerate(cells):
        tags = cell["metadata"].get("tags", [])
        if "solution" in tags:
            assert cell["metadata"].get("jupyter", {}).get("source_hidden"), "solutions start collapsed"
            after = cells[i + 1]
            assert "check" in after["metadata"].get("tags", [])
            found = re.findall(r'check\.exercise\("(\d\d\.\d+)"', "".join(after["source"]))
            assert found and found[0] in registry, found
            ids += found
    assert len(ids) >= 2, f"{path.name} needs at least two exercises"
    assert all(i.startswith(path.name[:2] + ".") for i in ids)


def test_notebook_lookup_by_number():
    assert notebooks.find("0") == notebooks.find("00") == NOTEBOOKS[0]
