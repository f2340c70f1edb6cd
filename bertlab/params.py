"""Checking a notebook's parameters: one clear sentence for a bad value.

Every notebook's second cell calls these on the values of its `parameters` cell, so a
papermill run with a bad value stops at once with a message that says what to pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bertlab.errors import ParameterError


def choice(name: str, value: Any, options: Sequence[Any]) -> Any:
    """Require `value` to be one of `options`."""
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise ParameterError(f"Parameter {name} must be one of {listed}, not {value!r}.")
    return value


def integer(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """Require a whole number, optionally within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"Parameter {name} must be a whole number, not {value!r}.")
    if minimum is not None and value < minimum:
        raise ParameterError(f"Parameter {name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise ParameterError(f"Parameter {name} must be at most {maximum}, not {value}.")
    return value


def number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> float:
    """Require a finite number, optionally > 0 and within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f"Parameter {name} must be a finite number, not {value!r}.")
    if positive and value <= 0:
        raise ParameterError(f"Parameter {name} must be greater than 0, not {value}.")
    if minimum is not None and value < minimum:
        raise ParameterError(f"Parameter {name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise ParameterError(f"Parameter {name} must be at most {maximum}, not {value}.")
    return float(value)


def text(name: str, value: Any, allow_empty: bool = True) -> str:
    """Require a string (non-empty unless `allow_empty`)."""
    if not isinstance(value, str):
        raise ParameterError(f"Parameter {name} must be a string, not {value!r}.")
    if not allow_empty and not value.strip():
        raise ParameterError(f"Parameter {name} must not be empty.")
    return value


def by_profile(profile: str, **sizes: Any) -> Any:
    """Pick the value for the resolved profile: ``by_profile(p, ci=50, laptop=2000, gpu=20000)``."""
    if profile not in sizes:
        raise ParameterError(f"No setting for profile {profile!r}; expected one of {sorted(sizes)}.")
    return sizes[profile]
