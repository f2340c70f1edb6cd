"""Self-checks for exercises: compare a learner's answer with the reference, kindly.

Introduced in notebook 01. Every exercise has an id ("03.2": notebook 03, exercise 2) so
a grader can find it. An exercise is a function the learner writes in a cell tagged
`solution`; the next cell, tagged `check`, calls ``check.exercise("03.2", my_function)``.
The reference and the test inputs live in `bertlab.exercises`, registered with
`@register`, so a grader can re-run every check from the package in a fresh namespace.

A failed check raises `CheckFailed`, which Jupyter shows as one readable message (what is
wrong: shape, which entries, max difference), not a traceback wall.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Importing the comparisons loads the package bertlab.exercises, which registers every
# exercise's reference check (one module per notebook) before any is run.
from bertlab.exercises.base import (
    EXERCISES,
    CheckFailed,
    Exercise,
    close,
    compare,
    equal,
    gradient_table,
    gradients,
    is_finite_number,
    register,
)

__all__ = ["EXERCISES", "CheckFailed", "Exercise", "close", "compare", "equal", "exercise",
           "gradient_table", "gradients", "is_finite_number", "register", "run_exercise"]


def _registry() -> dict[str, Exercise]:
    """Every registered exercise (all are registered once this module is imported)."""
    return EXERCISES


def exercise(exercise_id: str, *objects: Any, quiet: bool = False) -> None:
    """Check the learner's objects for exercise `exercise_id`; print ✓ or raise `CheckFailed`."""
    registry = _registry()
    if exercise_id not in registry:
        raise CheckFailed(exercise_id, f"there is no exercise {exercise_id}; known: {sorted(registry)}.")
    ex = registry[exercise_id]
    if len(objects) != len(ex.names):
        raise CheckFailed(exercise_id, f"pass {', '.join(ex.names)} to the check.")
    try:
        ex.checker(*objects)
    except CheckFailed:
        raise
    except NotImplementedError:
        raise CheckFailed(
            exercise_id,
            f"{' / '.join(ex.names)} is not written yet: replace `raise NotImplementedError` "
            "in the exercise cell with your code, run that cell, then this one.",
        ) from None
    except Exception as err:  # the learner's code raised: say so in one line
        raise CheckFailed(
            exercise_id, f"your code raised {type(err).__name__}: {err}".rstrip(": ") + "."
        ) from None
    if not quiet:
        print(f"✓ Exercise {exercise_id} ({ex.title}): passed.")


def run_exercise(exercise_id: str, namespace: Mapping[str, Any]) -> tuple[bool, str]:
    """For graders: check the names a learner defined in `namespace`; return (passed, message)."""
    registry = _registry()
    if exercise_id not in registry:
        return False, f"unknown exercise {exercise_id}"
    ex = registry[exercise_id]
    missing = [n for n in ex.names if n not in namespace]
    if missing:
        return False, f"{', '.join(missing)} not defined"
    try:
        exercise(exercise_id, *(namespace[n] for n in ex.names), quiet=True)
    except CheckFailed as err:
        return False, err.message
    return True, "passed"
