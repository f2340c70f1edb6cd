"""Headline metrics of a run, written as JSON that sweeps, reports and graders read.

A notebook starts a record through `bertlab.env.start` in its second cell and calls `record(name, value)` for each
headline number. When the notebook's `metrics_path` parameter is set, the JSON is rewritten
there atomically (write a temporary file, then rename) after every record, so an interrupted
run still leaves a valid file. Shape: a flat ``{name: number}`` plus ``"_meta"``.

Every command that writes a file checks it first with `check_output`: an existing file is
replaced only when it carries the command's own marker (``"_meta"`` here), or with
``--overwrite``; a notebook and the course's own files never.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bertlab.errors import ParameterError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# the checkout's own files, which no command writes over, not even with --overwrite
_REPO = Path(__file__).resolve().parent.parent
OWN_FOLDERS = tuple(_REPO / name for name in ("bertlab", "tests", "notebooks", "data"))

_metrics: dict[str, float] = {}
_meta: dict[str, Any] = {}
_path: Path | None = None
_t0 = time.perf_counter()


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` so that readers never see a half-written file.

    The one atomic writer of the package: a temporary file in the same folder, then a
    rename, which replaces the old file in one step even if the run is interrupted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        # mkstemp makes the file private (0600); give it the mode a plain open() would: the old
        # file's when replacing one, else what the umask allows (a teacher's grades.csv, a run's
        # metrics, a committed benchmark file are read by others too)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    """The process's umask, read without changing it where Linux reports it (os.umask can only
    be read by setting it, which would briefly change it for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON to `path`, atomically (see `write_atomic`)."""
    return write_atomic(path, json.dumps(obj, indent=2) + "\n")


def start(notebook: str, profile: str, seed: int, metrics_path: str = "", **meta: Any) -> None:
    """Begin a run: forget earlier metrics and remember where (and whether) to write them.

    `meta` goes into ``"_meta"`` as it is: `bertlab.env.start` adds the device that runs
    and the library versions.
    """
    global _path, _t0
    _metrics.clear()
    _meta.clear()
    _meta.update(notebook=notebook, profile=profile, seed=seed, **meta)
    _path = Path(metrics_path).expanduser() if metrics_path else None
    _t0 = time.perf_counter()
    _flush()


def record(name: str, value: float) -> float:
    """Record one headline metric, e.g. ``record("test_accuracy", 0.91)``; returns `value`.

    Names are snake_case with the split first: test_accuracy, validation_loss,
    challenge_accuracy, train_samples_per_s, tokens_per_s, mfu, peak_memory_gb.
    """
    if not _NAME.match(name):
        raise ParameterError(f"Metric name {name!r} must be snake_case, like test_accuracy.")
    number = float(value)
    if not math.isfinite(number):
        raise ParameterError(f"Metric {name} must be a finite number, not {value!r}.")
    _metrics[name] = number
    _flush()
    return value


def metrics() -> dict[str, Any]:
    """The metrics so far, with ``_meta`` (including seconds since `start`)."""
    return {**_metrics, "_meta": {**_meta, "seconds": round(time.perf_counter() - _t0, 2)}}


def _flush() -> None:
    if _path is not None:
        write_json_atomic(_path, metrics())


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a metrics JSON written by `record`."""
    with open(path) as f:
        return json.load(f)


def has_keys(*keys: str) -> Callable[[Path], bool]:
    """A marker test for `check_output`: the file is a JSON object with every one of `keys`
    (``has_keys("_meta")`` for a metrics JSON)."""
    def marked(path: Path) -> bool:
        try:
            found = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(found, dict) and all(k in found for k in keys)
    return marked


def check_output(path: str | os.PathLike, label: str, ours: Callable[[Path], bool],
                 overwrite: bool | None = None, example: str = "metrics.json") -> Path:
    """Check one file a command will write, before it does any work; return it resolved.

    `label` names it as the user gave it (``"--out README.md"``). A file that does not exist
    yet, or for which `ours(path)` finds the command's own marker, may be written. Refused in
    one sentence: a folder, a path inside a file, a notebook or one of the checkout's own files
    (`OWN_FOLDERS`), and any other existing file unless `overwrite` (None: the command has no
    --overwrite flag).
    """
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise ParameterError(f"{label} is a folder; give a file name, such as {Path(path) / example}.")
    blocker = next((p for p in target.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ParameterError(f"{label} lies inside {blocker}, which is a file, not a folder; give a path in a folder.")
    if not target.exists():
        return target
    if any(target.is_relative_to(folder) for folder in OWN_FOLDERS):
        raise ParameterError(f"{label} is one of the course's own files, which no command writes over; "
                             "give another path.")
    if ours(target):
        return target
    if target.suffix == ".ipynb":
        raise ParameterError(f"{label} is a notebook this command did not write, which it never replaces"
                             + (", not even with --overwrite" if overwrite is not None else "")
                             + "; give another path.")
    if not overwrite:
        how = "move that file away first" if overwrite is None else "pass --overwrite to replace it"
        raise ParameterError(f"{label} already exists and was not written by this command; "
                             f"give another path, or {how}.")
    return target
