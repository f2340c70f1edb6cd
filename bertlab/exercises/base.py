"""What every exercise check is made of: readable comparisons and the registry.

Introduced with `bertlab.check` in notebook 00. The reference check of each exercise
(`bertlab.exercises.nbNN`) compares the learner's answer with `close`, `equal` or
`gradients`, which raise `CheckFailed` with a message that says what is wrong (shape,
which entries, max difference), and is registered with `@register("03.2", title, names)`.
`bertlab.check` runs them; this module imports nothing of the package but `errors`, so
the checks and the runner never import each other.
"""


from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bertlab.errors import BertlabError


class CheckFailed(BertlabError, AssertionError):
    """An exercise's answer is not right yet; the message says how."""

    def __init__(self, exercise_id: str, message: str):
        self.exercise_id = exercise_id
        self.message = message
        super().__init__(f"[{exercise_id}] {message}")

    def _render_traceback_(self) -> list[str]:
        return [f"✗ Exercise {self.exercise_id}: {self.message}"]


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in idx) + "]"


def compare(answer: Any, expected: Any, atol: float = 1e-6, rtol: float = 1e-5) -> tuple[bool, str]:
    """Compare two numbers/arrays/tensors; return (ok, a sentence saying what differs)."""
    try:
        a = _as_array(answer)
    except (TypeError, ValueError):
        return False, f"expected a number or an array, got {type(answer).__name__}"
    e = _as_array(expected)
    if a.shape != e.shape:
        return False, f"shape is {tuple(a.shape)}, expected {tuple(e.shape)}"
    if a.size == 0:
        return True, "exact (empty)"
    if np.isnan(a).any() and not np.isnan(e).any():
        return False, f"{int(np.isnan(a).sum())} entries are NaN"
    diff = np.abs(a - e)
    worst = float(np.nanmax(diff))
    bad = diff > atol + rtol * np.abs(e)
    if not bad.any():
        return True, "exact" if worst == 0 else f"close (max abs diff {worst:.2g})"
    where = [_fmt_index(tuple(int(i) for i in ix)) for ix in np.argwhere(bad)[:3]]
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    if a.ndim == 0:
        return False, f"got {a.item():.6g}, expected {e.item():.6g} (diff {worst:.2g})"
    return False, (
        f"{int(bad.sum())} of {a.size} entries differ (at {', '.join(where)}"
        f"{', ...' if bad.sum() > 3 else ''}); at {_fmt_index(first)} got {a[first]:.6g}, "
        f"expected {e[first]:.6g}; max abs diff {worst:.2g}"
    )


def close(exercise_id: str, answer: Any, expected: Any, atol: float = 1e-6, rtol: float = 1e-5,
          what: str = "answer") -> None:
    """Raise `CheckFailed` unless `answer` equals `expected` within tolerance."""
    ok, why = compare(answer, expected, atol=atol, rtol=rtol)
    if not ok:
        raise CheckFailed(exercise_id, f"{what}: {why}.")


def equal(exercise_id: str, answer: Any, expected: Any, what: str = "answer") -> None:
    """Raise `CheckFailed` unless `answer == expected` (for lists, strings, ids)."""
    if answer != expected:
        raise CheckFailed(exercise_id, f"{what}: got {answer!r}, expected {expected!r}.")


def gradient_table(answer: Mapping[str, Any], expected: Mapping[str, Any],
                   atol: float = 1e-6, rtol: float = 1e-5) -> tuple[bool, str]:
    """A per-tensor table: exact / close / wrong (max diff) / missing. Returns (all ok, table)."""
    rows, ok_all = [], True
    width = max([len(k) for k in expected] + [4])
    for name, ref in expected.items():
        if name not in answer or answer[name] is None:
            rows.append(f"  {name:<{width}}  missing")
            ok_all = False
            continue
        ok, why = compare(answer[name], ref, atol=atol, rtol=rtol)
        ok_all &= ok
        rows.append(f"  {name:<{width}}  {why if ok else 'wrong: ' + why}")
    return ok_all, "\n".join(rows)


def gradients(exercise_id: str, answer: Mapping[str, Any], expected: Mapping[str, Any],
              atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Check a dict of gradients; print the table, raise `CheckFailed` if any is wrong."""
    ok, table = gradient_table(answer, expected, atol=atol, rtol=rtol)
    print(table)
    if not ok:
        raise CheckFailed(exercise_id, "some gradients are wrong (see the table above).")


# ---------------------------------------------------------------------------------------
# The exercise registry


@dataclass(frozen=True)
class Exercise:
    """One exercise: its id, a title, the names the learner defines, and its checker."""

    id: str
    title: str
    names: tuple[str, ...]
    checker: Callable[..., None]


EXERCISES: dict[str, Exercise] = {}


def register(exercise_id: str, title: str, *names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator: register a checker taking the learner's objects named `names`."""

    def wrap(checker: Callable[..., None]) -> Callable[..., None]:
        if exercise_id in EXERCISES:
            raise ValueError(f"exercise {exercise_id} is registered twice")
        EXERCISES[exercise_id] = Exercise(exercise_id, title, tuple(names), checker)
        return checker

    return wrap


def is_finite_number(x: Any) -> bool:
    """True for a finite real number (int/float or a 0-d array/tensor)."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
