"""Checks of user-given options and arrays, with one rule each and messages naming the value.

Every public entry point validates its arguments with these, so the same option is
accepted or refused the same way everywhere: booleans are never numbers, strings are
never numbers, and a refusal says what was expected and what was received.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_option(name: str, value, allowed):
    """`value` if it is one of `allowed`, else a ValueError naming both."""
    allowed = list(allowed)
    # An array compared with `in` is ambiguous; it is never an option.
    if isinstance(value, np.ndarray) or value not in allowed:
        raise ValueError(f"Unknown {name}={value!r}; expected one of {allowed}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int | None = None) -> int:
    """`value` as an int (>= `minimum` if given), else a ValueError naming the option."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
            minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    return int(value)


def check_number(name: str, value, low: float = -math.inf, high: float = math.inf, *,
                 include_low: bool = False, include_high: bool = False) -> float:
    """`value` as a finite float within the bounds (open unless `include_*`)."""
    if not _is_number(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float64's range: not finite for our purposes
        value = math.inf if value > 0 else -math.inf
    above = value >= low if include_low else value > low
    below = value <= high if include_high else value < high
    if not (math.isfinite(value) and above and below):
        if low == 0 and high == math.inf and not include_low:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if low == -math.inf and high == math.inf:
            raise ValueError(f"{name} must be finite, got {value!r}")
        if (low, high, include_low, include_high) == (0, 1, False, False):
            raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
        interval = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    """`value` as a float if it is positive and finite."""
    return check_number(name, value, 0.0)


def check_non_negative(name: str, value) -> float:
    """`value` as a float if it is finite and >= 0."""
    return check_number(name, value, 0.0, include_low=True)


def check_finite(name: str, value) -> float:
    """`value` as a float if it is finite."""
    return check_number(name, value)


def check_fraction(name: str, value) -> float:
    """`value` as a float in [0, 1)."""
    return check_number(name, value, 0.0, 1.0, include_low=True)


def check_probability(name: str, value) -> float:
    """`value` as a float strictly between 0 and 1 (a level, a quantile)."""
    return check_number(name, value, 0.0, 1.0)


def check_level(level) -> float:
    """An interval's coverage level, strictly between 0 and 1."""
    return check_probability("level", level)


def finite_array(name: str, values, allow_scalar: bool = False) -> np.ndarray:
    """`values` as a float64 array with no NaN or infinity, else a ValueError naming it."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {type(values).__name__}") from None
    except OverflowError:
        raise ValueError(f"{name} holds a number too large for float64") from None
    if array.ndim == 0 and not allow_scalar:
        raise ValueError(f"{name} must be an array with one entry per example, got a scalar")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array
