"""The package's floor plan: three rooms, no import cycles, modules of readable size.

The import graph counts every `import` and `from ... import` in a module, inside functions
too, so a cycle hidden in a function body (which runs only when that function is called)
fails here as surely as one at the top.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bertlab"
MAX_LINES = 350


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(source: str, name: str, is_package: bool = False) -> set[str]:
    """The bertlab modules that module `name` (whose code is `source`) imports, anywhere.

    A package that imports its own submodules by name at run time
    (``importlib.import_module(f"{__name__}.{...}")``, as `bertlab.exercises` does to
    register every exercise) counts as importing each of them.
    """
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "importlib.import_module":
            if "__name__" in ast.unparse(node.args[0]):
                found.update(m for m in MODULES if m.startswith(name + "."))
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            for alias in node.names:  # `from bertlab import hub` imports the module bertlab.hub
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {name for name in found if name in MODULES}


GRAPH = {name: imports_of(path.read_text(), name, path.name == "__init__.py") - {name}
         for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_two_modules_import_each_other_even_inside_functions():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_sees_imports_inside_functions_and_by_importlib():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    hidden = "def f():\n    from bertlab import hub\n"
    assert imports_of(hidden, "bertlab.model") == {"bertlab.hub"}
    dynamic = "import importlib\nimportlib.import_module(f'{__name__}.nb01')\n"
    assert "bertlab.exercises.nb01" in imports_of(dynamic, "bertlab.exercises", is_package=True)


def test_three_rooms_concepts_train_and_classroom():
    rooms = {name.split(".")[1] for name in MODULES if name.count(".") >= 1 and (PACKAGE / name.split(".")[1]).is_dir()}
    assert {"train", "classroom"} <= rooms
    classroom = {n for n in MODULES if n.startswith("bertlab.classroom")}
    # learner concepts and the fast loop never reach into the teacher's tools
    for name, deps in GRAPH.items():
        if not name.startswith("bertlab.classroom") and name != "bertlab.__main__":
            assert not deps & classroom, f"{name} imports the classroom tools {sorted(deps & classroom)}"
    top = {n for n in MODULES if n.count(".") == 1}
    for moved in ("runner", "runner_refresh", "course", "sweep", "student", "grade", "report",
                  "notebooks", "bench", "widgets"):
        assert f"bertlab.{moved}" not in top, f"bertlab/{moved}.py belongs in a room of its own"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_350_lines(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(PACKAGE.parent)} has {lines} lines; split it by idea"


def test_contributing_map_names_every_module():
    text = (PACKAGE.parent / "CONTRIBUTING.md").read_text()
    for name, path in MODULES.items():
        if path.name in ("__init__.py", "__main__.py") or ".exercises." in name or ".synth." in name:
            continue
        shown = str(path.relative_to(PACKAGE.parent))
        assert f"`{shown}`" in text or f"`{path.stem}`" in text, f"CONTRIBUTING.md's map does not show {shown}"
