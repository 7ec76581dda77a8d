"""Reading a CSV table for a model: its features, its target and the task.

`read_table` reads a file (`tfbnn.data.reading.read_frame`), picks the target
column, works out whether the task is regression or classification and checks
that the target can be learnt. `prepare_features` (`tfbnn.data.features`)
then encodes the feature columns as a float matrix. `read_frame`,
`prepare_features` and the other names used with them are importable from here.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tfbnn.data.cells import (
    DataWarning,
    check_numbers_in_text,
    check_values,
    is_categorical,
)
from tfbnn.data.features import IMPUTE_OPTIONS, prepare_features
from tfbnn.data.reading import (
    DEFAULT_ENCODING,
    DEFAULT_NA_VALUES,
    check_na_values,
    read_frame,
    read_frames,
    separator_hint,
)
from tfbnn.validation import check_option

__all__ = [
    "DEFAULT_ENCODING",
    "DEFAULT_NA_VALUES",
    "IMPUTE_OPTIONS",
    "DataWarning",
    "Table",
    "Task",
    "infer_task",
    "prepare_features",
    "read_frame",
    "read_table",
]

TARGET_HINT = "; rows without a target cannot be used"
"""How an error about a missing target ends."""

MAX_CLASSES = 10
"""An integer-valued target with more distinct values than this is regression."""

MIN_ROWS_PER_CLASS = 20
"""Rows needed per distinct value before an integer target counts as classes."""

MANY_CLASSES = 100
"""Over this many classes, fitting warns that the target may not be labels."""

FEW_ROWS_PER_CLASS = 5
"""With more than two classes and fewer rows than this per class on average,
fitting warns that the target may not be labels."""


@dataclasses.dataclass(frozen=True, eq=False)
class Table:
    """A table split into features and a target.

    Attributes:
        X: The feature columns, as read.
        y: The target column; class labels are kept as they are in the file,
            regression targets are float64.
        target_name: Name of the target column.
        task: `"regression"` or `"classification"`.
        impute: The imputation requested when reading (`None` or `"mean"`), to
            pass on to `prepare_features`.
        read_options: How the file was read (`header`, `sep`, `na_values`,
            `encoding`; JSON-serialisable), so that later files can be read the
            same way: `read_frame(path, **table.read_options)`.
    """

    X: pd.DataFrame
    y: pd.Series
    target_name: str
    task: str
    impute: str | None = None
    read_options: dict = dataclasses.field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns, in file order."""
        return list(self.X.columns)


class Task(enum.StrEnum):
    """What the target column is."""

    REGRESSION = "regression"
    """A real-valued (or count) target."""
    CLASSIFICATION = "classification"
    """A target taking one of a finite set of labels."""


def read_table(
    path,
    *,
    target,
    header: bool = True,
    sep: str = ",",
    task=None,
    impute=None,
    na_values=DEFAULT_NA_VALUES,
    encoding: str = DEFAULT_ENCODING,
    fitting: bool = True,
) -> Table:
    """Reads a delimited text file and separates the target column.

    Args:
        path: The file to read.
        target: The target column: its name, or a 0-based position (negative
            counts from the end). A string of digits such as `"3"` or `"-1"`
            is a position only if no column has that name.
        header: Whether the first line holds column names. Without one the
            columns are named `"0"`, `"1"`, ….
        sep: The field separator, one character.
        task: `"regression"`, `"classification"`, or `None` to infer it (see
            `infer_task`).
        impute: `None` (missing feature values are an error) or `"mean"`
            (they are filled later by `prepare_features`). A missing target is
            always an error.
        na_values: The cells that mark a missing value (default `"?"`, `"NA"`,
            `"N/A"`, `"NaN"`, `"nan"`); empty cells always do. See `read_frame`.
        encoding: The file's text encoding (default `"utf-8"`).
        fitting: Whether a model is to be fitted on the table. Then a text
            column that is mostly numbers is refused (see
            `tfbnn.data.cells.MOSTLY_NUMERIC`), so is a target with one value,
            and a `DataWarning` says when a classification target has over
            `MANY_CLASSES` (100) classes, or more than two and under
            `FEW_ROWS_PER_CLASS` (5) rows per class. Pass False to read rows
            for a fitted model (to score or calibrate it).

    Returns:
        A `Table`.

    Raises:
        FileNotFoundError: If `path` does not exist.
        ValueError: For an unreadable file (see `read_frame`), a target that is
            not found or out of range, no feature columns, missing or infinite
            values, numbers with stray text cells, a constant target, a
            non-numeric target with `task="regression"`, or an unknown option.
        TypeError: For options of the wrong type.
    """
    if task is not None:
        check_option("task", task, [t.value for t in Task])
    check_option("impute", impute, IMPUTE_OPTIONS)
    read_options = csv_options(header, sep, na_values, encoding)
    path = Path(path)
    frame = read_frame(path, **read_options)
    return _split_table(frame, path, target, task, impute, read_options, fitting)


def read_tables(
    path,
    *,
    target,
    task,
    chunk_rows: int | None,
    header: bool = True,
    sep: str = ",",
    impute=None,
    na_values=DEFAULT_NA_VALUES,
    encoding: str = DEFAULT_ENCODING,
    dtype: dict | None = None,
):
    """`read_table(..., fitting=False)` in parts of at most `chunk_rows` rows (None: the whole
    file as one part): the rows of a file too big to hold, for a fitted model.

    Each part is read (see `read_frames`, which takes `dtype`) and checked as
    `read_table` reads a whole file. `task` must be given: it is not inferred from a part.

    Yields:
        A `Table` per part, in file order.
    """
    check_option("task", task, [t.value for t in Task])
    check_option("impute", impute, IMPUTE_OPTIONS)
    read_options = csv_options(header, sep, na_values, encoding)
    path = Path(path)
    for frame in read_frames(path, **read_options, chunk_rows=chunk_rows, dtype=dtype):
        yield _split_table(frame, path, target, task, impute, read_options, fitting=False)


def csv_options(header, sep, na_values, encoding) -> dict:
    return {"header": header, "sep": sep, "na_values": list(check_na_values(na_values)),
            "encoding": encoding}


def _split_table(frame, path: Path, target, task, impute, read_options: dict,
                 fitting: bool) -> Table:
    """`read_table`'s checks of a `frame` read from `path`, split into features and target."""
    read_options = {**read_options, "header": bool(read_options["header"])}  # for JSON
    sep, encoding = read_options["sep"], read_options["encoding"]
    hint = separator_hint(path, sep, encoding) if frame.shape[1] == 1 else ""
    target_name = resolve_target(frame, target, path, hint)
    X = frame.drop(columns=target_name)
    if X.shape[1] == 0:
        raise ValueError(
            f"{path} has only the target column {target_name!r}; no features{hint}")
    y = frame[target_name]
    if task != Task.CLASSIFICATION.value:
        check_numbers_in_text(y.to_frame(), str(path), read_options["na_values"])
    check_values(y.to_frame(), context=str(path), hint=TARGET_HINT)
    if fitting:
        check_numbers_in_text(X, str(path), read_options["na_values"])
        check_learnable(y, str(path))
    check_values(X, context=str(path), allow_missing=impute is not None)
    task = Task(task).value if task is not None else infer_task(y)
    if task == Task.REGRESSION.value:
        y = _regression_target(y, path)
    elif fitting:
        warn_of_many_classes(y.nunique(), len(y), y.name, path, is_categorical(y))
    return Table(X=X, y=y, target_name=target_name, task=task, impute=impute,
                 read_options=read_options)


def infer_task(y: pd.Series) -> str:
    """Guesses whether a target column holds classes or real values.

    The rule: text, categorical and boolean targets are classification. A
    numeric target is classification only if every value is an integer and
    there are two distinct values, or at most `MAX_CLASSES` (10) distinct
    values with at least `MIN_ROWS_PER_CLASS` (20) rows per value on average
    (so 4 classes need 80 rows). Everything else is regression. Pass `task=`
    explicitly when the guess is wrong, e.g. for ratings or small counts.

    Args:
        y: The target column, without missing values.

    Returns:
        `"classification"` or `"regression"`.
    """
    if is_categorical(y):
        return Task.CLASSIFICATION.value
    values = y.to_numpy(dtype=np.float64)
    return counted_task(len(np.unique(values)), len(values),
                        bool(np.all(values == np.round(values))))


def counted_task(n_distinct: int, n_rows: int, integers: bool) -> str:
    """`infer_task`'s rule for a numeric target of `n_rows` values, `n_distinct` distinct,
    all integers or not."""
    few_values = n_distinct == 2 or (
        n_distinct <= MAX_CLASSES and n_rows >= MIN_ROWS_PER_CLASS * n_distinct
    )
    if few_values and integers:
        return Task.CLASSIFICATION.value
    return Task.REGRESSION.value


def resolve_target(frame: pd.DataFrame, target, path: Path, hint: str) -> str:
    """Returns the name of the target column given as a name or a position.

    `hint` ends the errors (a file read as one column may need another `sep`).
    """
    columns = list(frame.columns)
    if isinstance(target, str):
        if target in columns:
            return target
        if not re.fullmatch(r"[+-]?\d+", target.strip()):
            raise ValueError(
                f"Target column {target!r} not found in {path}; available columns: "
                f"{columns}{hint}")
        target = int(target)
    elif isinstance(target, bool) or not isinstance(target, int | np.integer):
        raise TypeError(f"target must be a column name or an integer index, got {target!r}")
    if not -len(columns) <= target < len(columns):
        raise ValueError(
            f"Target index {target} is out of range for the {len(columns)} columns of "
            f"{path} (valid: {-len(columns)} to {len(columns) - 1}); columns: {columns}{hint}")
    return columns[target]


def _regression_target(y: pd.Series, path: Path) -> pd.Series:
    if is_categorical(y):
        raise not_numeric_target_error(y.name, path, y.iloc[0])
    return y.astype(np.float64)


def not_numeric_target_error(name, path, example) -> ValueError:
    """The error for a regression target `name` holding text such as `example`."""
    return ValueError(
        f"Target {name!r} in {path} is not numeric (e.g. {example!r}), so it cannot "
        "be used with task='regression'; use task='classification'")




def check_learnable(y: pd.Series, context: str) -> None:
    """Refuses a target with one value: no model can learn anything from it.

    `context` (a file's path, a method's name) starts the message."""
    values = y.unique()
    if len(values) == 1:
        raise one_value_error(context, y.name, values[0], len(y))


def one_value_error(context: str, name, value, n_rows: int) -> ValueError:
    """`check_learnable`'s error: target `name` holds `value` in all `n_rows` rows."""
    value = value.item() if isinstance(value, np.generic) else value
    return ValueError(
        f"{context}: target column {name!r} holds the same value ({value!r}) in all "
        f"{n_rows} rows, so there is nothing to learn; is it the right column?")


def many_classes(n_classes: int, n_rows: int) -> bool:
    """Whether `n_classes` classes in `n_rows` rows look like an identifier or a
    measurement rather than labels: over `MANY_CLASSES`, or more than two with
    fewer than `FEW_ROWS_PER_CLASS` rows per class on average."""
    return n_classes > MANY_CLASSES or (
        n_classes > 2 and n_rows < FEW_ROWS_PER_CLASS * n_classes)


def warn_of_many_classes(n_classes: int, n_rows: int, name, path, text: bool) -> None:
    """Warns of a classification target `name` (of `text` labels or numbers) that looks like
    an identifier or a measurement."""
    if not many_classes(n_classes, n_rows):
        return
    advice = ("if it holds numbers to predict, use task='regression'" if not text
              else "is it an identifier or free text rather than labels?")
    warnings.warn(
        f"{path}: classification target {name!r} has {n_classes} classes for {n_rows} "
        f"rows ({n_rows / n_classes:.1f} rows per class); {advice}", DataWarning,
        stacklevel=3)
