"""Checks of a table's cells: missing and infinite values, and numbers written as text.

Each check raises a ValueError that names the column, the data row (counted
from 1, a header line not counted) and the value, so that a user can find the
cell in the file. `DataWarning` is what tfbnn warns with about data it can still
use (unseen categories, many classes).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from pandas.api import types

MOSTLY_NUMERIC = 0.9
"""A text column in which at least this fraction of the non-missing cells read as
numbers is a numeric column with stray cells (an error naming them), not categories."""

MANY_NUMBERS = 10
"""A text column in which over half of the non-missing cells read as numbers, taking
more than this many distinct values, is also numeric with stray cells: a column of
categories such as `2, 3, 4, 5more` has few distinct numbers."""

SHOWN_CELLS = 5
"""How many offending cells an error lists."""

IMPUTE_HINT = "; use impute='mean' to fill missing values"


class DataWarning(UserWarning):
    """Data that tfbnn can use, but maybe not as the user meant (see the message)."""


def is_categorical(column: pd.Series) -> bool:
    """Whether a column holds labels rather than numbers (text, category or bool)."""
    return types.is_bool_dtype(column) or not types.is_numeric_dtype(column)


def data_row(column: pd.Series, position: int) -> str:
    """`"data row 3"` for the cell at 0-based `position`, with its index label if it differs."""
    label = column.index[position]
    label = label.item() if isinstance(label, np.generic) else label  # 12, not np.int64(12)
    return f"data row {position + 1}" + ("" if label == position else f" (index {label!r})")


def check_values(
    frame: pd.DataFrame, context: str, allow_missing: bool = False, hint: str = IMPUTE_HINT
) -> None:
    """Raises a ValueError naming the first missing or infinite cell of `frame`."""
    for name in frame.columns:
        column = frame[name]
        if not allow_missing:
            raise_at_first(column, column.isna().to_numpy(), "Missing value", context, hint)
        if not is_categorical(column):
            infinite = np.isinf(column.to_numpy(dtype=np.float64, na_value=np.nan))
            raise_at_first(column, infinite, "Infinite value", context)


def raise_at_first(
    column: pd.Series, bad: np.ndarray, problem: str, context: str, hint: str = ""
) -> None:
    """Raises a ValueError naming the first cell of `column` where `bad` holds, if any."""
    if not bad.any():
        return
    position = int(np.argmax(bad))
    raise cell_error(context, problem, column.name, data_row(column, position),
                     int(bad.sum()), hint)


def cell_error(context: str, problem: str, name, row: str, count: int,
               hint: str = "") -> ValueError:
    """The error of `raise_at_first`: `problem` in column `name` first at `row`
    (`"data row 3"`), `count` rows affected."""
    return ValueError(f"{context}: {problem} in column {name!r} at {row} ({count} row(s) "
                      f"affected){hint}")


def not_numbers(column: pd.Series) -> np.ndarray:
    """A mask of the cells of `column` that are present but do not read as numbers."""
    if types.is_bool_dtype(column) or isinstance(column.dtype, pd.CategoricalDtype) or (
            not is_categorical(column)):
        return np.zeros(len(column), dtype=bool)  # numbers, or labels on purpose
    cells = column.astype(object).where(column.notna(), None)
    values = pd.to_numeric(cells.map(_number_or_text), errors="coerce")
    return (column.notna() & values.isna()).to_numpy()


def _number_or_text(value):
    # Cells of an object column may be any Python object: only numbers and text
    # (which pd.to_numeric then reads) can be numbers.
    if isinstance(value, str):
        return value.strip()
    return value if isinstance(value, numbers.Real) and not isinstance(value, bool) else None


def mostly_numbers(column: pd.Series, bad: np.ndarray) -> bool:
    """Whether a text column whose non-numeric cells are `bad` is numbers with stray cells
    (see `mostly_numbers_counted`)."""
    present = column.notna().to_numpy()
    n_present, n_numbers = int(present.sum()), int((present & ~bad).sum())

    def n_distinct():
        return len(np.unique(number_values(column, present & ~bad)))

    return bool(bad.any()) and mostly_numbers_counted(n_present, n_numbers, n_distinct)


def mostly_numbers_counted(n_present: int, n_numbers: int, n_distinct) -> bool:
    """Whether a text column of `n_present` non-missing cells, `n_numbers` of them
    numbers (and at least one not), is numbers with stray cells.

    The rule: at least `MOSTLY_NUMERIC` (90%) of its non-missing cells are
    numbers, or over half are and they take more than `MANY_NUMBERS` (10)
    distinct values. `n_distinct()` counts those values (called only when needed).
    """
    if 2 * n_numbers <= n_present:
        return False
    return n_numbers >= MOSTLY_NUMERIC * n_present or n_distinct() > MANY_NUMBERS


def number_values(column: pd.Series, numbers: np.ndarray) -> np.ndarray:
    """The cells of `column` where `numbers` holds, read as float64 numbers."""
    return pd.to_numeric(column[numbers].astype(object).map(_number_or_text)).to_numpy(
        np.float64)


def check_numbers_in_text(frame: pd.DataFrame, context: str, na_values=None) -> None:
    """Refuses a text column that is mostly numbers (see `mostly_numbers`), naming its other cells.

    Such a column is almost always numeric with a few missing-value markers or
    typos; read as categories it would silently become one feature per distinct
    number. `na_values`, the markers in use, is quoted in the hint.
    """
    for name in frame.columns:
        column = frame[name]
        bad = not_numbers(column)
        if not mostly_numbers(column, bad):
            continue
        raise numbers_in_text_error(context, column.name, int(bad.sum()),
                                    int(column.notna().sum()), cells_named(column, bad),
                                    na_values)


def numbers_in_text_error(context: str, name, n_bad: int, n_present: int, named: str,
                          na_values) -> ValueError:
    """`check_numbers_in_text`'s error for column `name`, its other cells `named`."""
    return ValueError(
        f"{context}: column {name!r} holds numbers except in {n_bad} of {n_present} "
        f"cell(s): {named}; if these mark missing values, add them to "
        f"na_values{_markers(na_values)}, else correct them")


def cells_named(column: pd.Series, bad: np.ndarray) -> str:
    """The first `SHOWN_CELLS` cells where `bad` holds, as `data row 3 '?'`, and how many more."""
    positions = np.flatnonzero(bad)
    return list_cells([data_row(column, int(i)) for i in positions[:SHOWN_CELLS]],
                      [column.iloc[int(i)] for i in positions[:SHOWN_CELLS]], len(positions))


def list_cells(rows: list[str], values: list, total: int) -> str:
    """`data row 3 '?', data row 7 'x' and 4 more`: the cells at `rows` of `total`."""
    named = [f"{row} {value!r}" for row, value in zip(rows, values, strict=True)]
    more = total - len(named)
    return ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _markers(na_values) -> str:
    if na_values is None:
        return ""
    return f" (now {list(na_values)} and empty cells)"
