"""Finding, checking, executing and cleaning the course's notebooks.

Used by ``python -m bertlab run`` (papermill with checked parameters), by ``make course``
and by ``python -m bertlab refresh`` (re-execute a notebook in place for committing).
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
from pathlib import Path
from typing import Any

from bertlab.errors import ParameterError

REPO = Path(__file__).resolve().parents[2]  # bertlab/classroom/notebooks.py -> the checkout
NOTEBOOKS = REPO / "notebooks"
RUNS = REPO / "runs"

# The kernel's own start-up warnings (e.g. about local TCP transport) are noise for a learner.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]


def display_path(path: str | os.PathLike) -> str:
    """`path` relative to the working directory when it lies below it, else as it is."""
    path, cwd = Path(path).resolve(), Path.cwd().resolve()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def find(notebook: str | os.PathLike) -> Path:
    """A notebook path, or a number like "03" / "3" for notebooks/03_*.ipynb."""
    text = str(notebook)
    if re.fullmatch(r"\d{1,2}", text):
        hits = sorted(NOTEBOOKS.glob(f"{int(text):02d}_*.ipynb"))
        if not hits:
            numbers = sorted(q.name[:2] for q in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
            span = f"{numbers[0]} to {numbers[-1]}" if numbers else "a path"
            raise ParameterError(f"There is no notebook numbered {text} in notebooks/; try {span}.")
        return hits[0]
    path = Path(text).expanduser()
    if not path.exists():
        raise ParameterError(f"The notebook {text} does not exist; give a path or a number like 03.")
    if path.suffix != ".ipynb":
        raise ParameterError(f"{text} is not a Jupyter notebook (.ipynb) file.")
    if not path.is_file():
        raise ParameterError(f"{text} is a folder; give one notebook file (.ipynb).")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ParameterError(f"The notebook {text} is not valid JSON ({err}); is the file damaged?") from None
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        raise ParameterError(f"{text} is valid JSON but not a Jupyter notebook (no list of cells); "
                             "give a notebook saved by Jupyter.")
    return path


def parameters(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The notebook's parameters: {name: {"type": "int", "default": ..., "help": ...}}."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ParameterError(f"The notebook {path} has no cell tagged 'parameters'.")
    found: dict[str, dict[str, Any]] = {}
    lines = cells[0].source.splitlines()
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = lines[node.lineno - 1]
            comment = line.split("#", 1)[1].strip() if "#" in line else ""
            found[node.target.id] = {
                "type": ast.unparse(node.annotation),
                "default": ast.literal_eval(node.value) if node.value is not None else None,
                "help": comment,
            }
    return found


def cast_parameters(path: str | os.PathLike, given: dict[str, str]) -> dict[str, Any]:
    """Check names against the notebook and cast the command line's strings to the declared types."""
    declared = parameters(path)
    out: dict[str, Any] = {}
    for name, raw in given.items():
        if name not in declared:
            raise ParameterError(
                f"{Path(path).name} has no parameter {name!r}; its parameters are: "
                f"{', '.join(declared)}."
            )
        kind = declared[name]["type"]
        out[name] = cast(name, raw, kind)
    return out


def cast(name: str, raw: Any, kind: str) -> Any:
    """Cast one value to the annotated type name ("int", "float", "str", "bool")."""
    if not isinstance(raw, str):
        return raw
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in {"true", "1", "yes"}:
                return True
            if raw.lower() in {"false", "0", "no"}:
                return False
            raise ValueError
    except ValueError:
        raise ParameterError(f"Parameter {name} expects {kind}, but got {raw!r}.") from None
    return raw


def _progress_text(model_id: str, state: dict[str, Any]) -> str | None:
    """The final text of a tqdm.auto progress bar, rebuilt from the saved widget state."""
    box = state.get(model_id, {}).get("state", {})
    children = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in box.get("children", [])]
    kinds = [c.get("model_name") for c in children]
    if kinds != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (c.get("state", {}) for c in children)
    share = bar.get("value", 0) / bar["max"] if bar.get("max") else 0
    filled = "█" * round(10 * share) + " " * (10 - round(10 * share))
    text = f"{left.get('value', '')}|{filled}|{right.get('value', '')}"
    return html.unescape(text).replace("\u2007", " ")


def clean(path: str | os.PathLike) -> None:
    """Strip what must not be committed: papermill and widget metadata, execution timings.

    A tqdm.auto progress bar is a widget; its text fallback still shows the bar's first
    state ("0%"), so it is rewritten to the bar's final state from the saved widget state.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nb.metadata.pop("papermill", None)
    widgets = nb.metadata.pop("widgets", {})
    state = widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                view = data.pop("application/vnd.jupyter.widget-view+json", None)
                final = _progress_text(view["model_id"], state) if view else None
                if final is not None:
                    data["text/plain"] = final
    nbformat.write(nb, str(path))


def execute(
    path: str | os.PathLike,
    output: str | os.PathLike,
    params: dict[str, Any] | None = None,
    timeout: int = 1800,
    progress: bool = False,
) -> None:
    """Run a notebook with papermill (working directory: notebooks/) into `output`."""
    import papermill

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(path),
        str(output),
        parameters=params or {},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=progress,
        execution_timeout=timeout,
        log_output=False,
        extra_arguments=QUIET_KERNEL,
    )


def refresh(path: str | os.PathLike, timeout: int = 1800) -> None:
    """Re-execute a notebook in place from a fresh kernel (for committed outputs), then clean it."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", extra_arguments=QUIET_KERNEL,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    nbformat.write(nb, str(path))
    clean(path)
